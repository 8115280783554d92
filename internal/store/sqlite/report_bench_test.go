package sqlite_test

import (
	"context"
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/store"
)

// BenchmarkApplyReports measures the server's report write on a real SQLite
// file: groups of 1 (an idle server: each report its own transaction) and of
// 16 (a busy one), each report five state changes to updates of the index,
// as in bench/fleet's storm (every agent in turn reports them installed,
// with a newer time each pass). It reports the time per report.
func BenchmarkApplyReports(b *testing.B) {
	for _, group := range []int{1, 16} {
		b.Run(fmt.Sprintf("group=%d", group), func(b *testing.B) {
			ctx := context.Background()
			db := openAt(b, filepath.Join(b.TempDir(), "bulwark.db"))
			defer db.Close()
			const agents = 2000
			now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
			var ups []store.Update
			for u := 1; u <= 5; u++ {
				ups = append(ups, store.Update{Vendor: "bench", ID: fmt.Sprintf("BW-%d", u), Title: "bench", Product: "debian-12",
					Classification: "security", Severity: "critical", SHA256: "x", IndexedAt: now})
			}
			if err := db.UpsertUpdates(ctx, ups); err != nil {
				b.Fatal(err)
			}
			for i := range agents {
				id := fmt.Sprintf("agt-%026x", i)
				if err := db.CreateAgent(ctx, &store.Agent{ID: id, MachineID: fmt.Sprintf("%032x", i+1), Hostname: "h", OS: "debian 12",
					Arch: "amd64", Group: "default", CertSerial: id, Status: store.AgentActive, EnrolledAt: now, LastSeen: now}); err != nil {
					b.Fatal(err)
				}
			}
			next := 0
			apply := func(rs []*store.Report) {
				for j := range rs {
					i := next % agents
					next++
					at := now.Add(time.Duration(next) * time.Millisecond)
					r := &store.Report{AgentID: fmt.Sprintf("agt-%026x", i), BatchID: fmt.Sprintf("batch-%d", next), ReceivedAt: at}
					for u := 1; u <= 5; u++ {
						r.Changes = append(r.Changes, store.UpdateState{Vendor: "bench", UpdateID: fmt.Sprintf("BW-%d", u), State: "installed", UpdatedAt: at})
					}
					rs[j] = r
				}
				applied, err := db.ApplyReports(ctx, rs)
				if err != nil {
					b.Fatal(err)
				}
				for j, ok := range applied {
					if !ok {
						b.Fatalf("report %d of the group not applied", j)
					}
				}
			}
			// A first report from every agent: the timed ones update its
			// states, as in the fleet's resumed storm.
			for range agents / 100 {
				apply(make([]*store.Report, 100))
			}
			rs := make([]*store.Report, group)
			cpu0 := cpuTime(b)
			for b.Loop() {
				apply(rs)
			}
			n := float64(b.N * group)
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/n, "ns/report")
			b.ReportMetric(float64((cpuTime(b)-cpu0).Nanoseconds())/n, "cpu-ns/report")
		})
	}
}

// cpuTime is the CPU time (user and system) the process used so far.
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
