package server

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/store"
	"github.com/bulwarkhq/bulwark/internal/store/sqlite"
)

// TestIngesterGroupsAndIsolates: concurrent reports are all applied exactly
// once through group commits, and a report for an unknown agent fails alone.
func TestIngesterGroupsAndIsolates(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "b.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	now := time.Now()
	for i := range 4 {
		if err := db.CreateAgent(ctx, &store.Agent{ID: fmt.Sprintf("a%d", i), MachineID: "m", Hostname: "h", OS: "o", Arch: "amd64",
			Group: "default", CertSerial: "s", Status: store.AgentActive, EnrolledAt: now, LastSeen: now}); err != nil {
			t.Fatal(err)
		}
	}
	in := NewIngester(db)
	defer in.Close()
	var wg sync.WaitGroup
	var mu sync.Mutex
	applied, unknown := 0, 0
	for i := range 200 {
		wg.Go(func() {
			agent := fmt.Sprintf("a%d", i%4)
			if i%50 == 7 {
				agent = "nobody"
			}
			r := &store.Report{AgentID: agent, BatchID: fmt.Sprintf("b%d", i%100), ReceivedAt: now,
				Changes: []store.UpdateState{{Vendor: "v", UpdateID: fmt.Sprintf("u%d", i), State: "needed", UpdatedAt: now}}}
			ok, err := in.Apply(ctx, r)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case errors.Is(err, store.ErrNotFound):
				unknown++
			case err != nil:
				t.Error(err)
			case ok:
				applied++
			}
		})
	}
	wg.Wait()
	// Reports i and i+100 are the same batch of the same agent (a retry):
	// each distinct (agent, batch) pair counts once.
	want := map[string]bool{}
	for i := range 200 {
		if i%50 != 7 {
			want[fmt.Sprintf("a%d/b%d", i%4, i%100)] = true
		}
	}
	if unknown != 4 || applied != len(want) {
		t.Fatalf("applied %d (want %d), unknown agent %d (want 4)", applied, len(want), unknown)
	}
}
