// Command ingest measures how many agent report batches per second the
// server's ingester applies to the SQLite store: each batch carries ten
// per-update state changes and its batch id is recorded for idempotence;
// several writers submit at once, as concurrent report requests do, and the
// ingester group-commits what arrives together. It is a benchmark, not part
// of the test run.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bulwarkhq/bulwark/internal/server"
	"github.com/bulwarkhq/bulwark/internal/store"
	"github.com/bulwarkhq/bulwark/internal/store/sqlite"
)

func main() {
	dir := flag.String("dir", "", "directory for the database (required)")
	dur := flag.Duration("duration", 10*time.Second, "how long to run")
	agents := flag.Int("agents", 1000, "enrolled agents")
	writers := flag.Int("writers", 8, "concurrent writers")
	flag.Parse()
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "ingest: -dir is required")
		os.Exit(2)
	}
	if err := run(*dir, *dur, *agents, *writers); err != nil {
		fmt.Fprintln(os.Stderr, "ingest:", err)
		os.Exit(1)
	}
}

func run(dir string, dur time.Duration, agents, writers int) error {
	ctx := context.Background()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	db, err := sqlite.Open(ctx, filepath.Join(dir, "bulwark.db"))
	if err != nil {
		return err
	}
	defer db.Close()
	now := time.Now()
	for i := range agents {
		a := &store.Agent{ID: fmt.Sprintf("agt-%d", i), MachineID: fmt.Sprintf("m%08d", i), Hostname: "h", OS: "debian 12", Arch: "amd64",
			Group: "default", CertSerial: "s", Status: store.AgentActive, EnrolledAt: now, LastSeen: now}
		if err := db.CreateAgent(ctx, a); err != nil {
			return err
		}
	}
	in := server.NewIngester(db)
	defer in.Close()
	var n atomic.Int64
	var seq atomic.Int64
	stop := time.Now().Add(dur)
	var wg sync.WaitGroup
	var firstErr atomic.Value
	for range writers {
		wg.Go(func() {
			for time.Now().Before(stop) {
				k := seq.Add(1)
				r := &store.Report{AgentID: fmt.Sprintf("agt-%d", k%int64(agents)), BatchID: fmt.Sprintf("b-%d", k), ReceivedAt: time.Now()}
				for j := range 10 {
					r.Changes = append(r.Changes, store.UpdateState{Vendor: "example", UpdateID: fmt.Sprintf("BW-%d", (int(k)+j)%500), State: "installed", UpdatedAt: time.Now()})
				}
				ok, err := in.Apply(ctx, r)
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				if ok {
					n.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return err
	}
	fmt.Printf("| report batches/s into SQLite (10 changes each, %d concurrent writers, %d agents; goal ≥ 5,000) | %.0f | | |\n", writers, agents, float64(n.Load())/dur.Seconds())
	return nil
}
