package server

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/slowlink"
	"github.com/bulwarkhq/bulwark/internal/store"
	"github.com/bulwarkhq/bulwark/internal/tuf"
)

// A sync of a sizable repository (8 updates of 1 MiB) through a link of
// 4 MiB/s: GET /api/v1/sync/progress shows the bytes on disk growing while
// the sync runs, below the total, in the targets phase; when it ends the
// run leaves the list and the history has it with every byte.
func TestSyncProgressShowsBytesGrow(t *testing.T) {
	const updates, size = 8, 1 << 20
	v := newVendorRepo(t, "example")
	for i := range updates {
		v.publish(t, fmt.Sprintf("BW-%d", i), "low", map[string]string{"p.deb": strings.Repeat(string(rune('a'+i)), size)})
	}
	up := startServer(t, Config{Vendors: []HostedVendor{{Name: "example", Dir: v.dir}}})
	relay := slowlink.Start(t, strings.TrimPrefix(up.url, "https://"), 4<<20)
	// The site syncs at start, through the slow link.
	site := startServerSyncing(t, Config{Upstream: &Upstream{URL: "https://" + relay, CAFingerprint: up.CAFingerprint(), Interval: time.Hour,
		Vendors: []UpstreamVendor{{Name: "example", RootFingerprint: tuf.RootFingerprint(v.root(t))}}}})

	var seen []SyncProgress
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var p struct{ Syncs []SyncProgress }
		if err := json.Unmarshal(site.admin("GET", "/api/v1/sync/progress", nil, 200), &p); err != nil {
			t.Fatal(err)
		}
		if len(p.Syncs) > 1 {
			t.Fatalf("two syncs at once: %+v", p.Syncs)
		}
		if len(p.Syncs) == 1 {
			seen = append(seen, p.Syncs[0])
		} else if len(seen) > 0 {
			break // it ended
		}
		if time.Now().After(deadline) {
			t.Fatalf("no sync ended within 2 minutes; seen %+v", seen)
		}
		time.Sleep(20 * time.Millisecond)
	}
	var growing, maxTotal int64
	var last *SyncProgress
	phases := map[string]bool{}
	for i := range seen {
		s := &seen[i]
		phases[s.Phase] = true
		if s.Vendor != "example" || s.ID != seen[0].ID {
			t.Fatalf("progress of another run: %+v", s)
		}
		if s.BytesDone > s.BytesTotal || s.UpdatesDone > s.UpdatesTotal || s.PayloadsDone > s.PayloadsTotal {
			t.Fatalf("more done than planned: %+v", s)
		}
		if last != nil && s.BytesDone < last.BytesDone {
			t.Fatalf("bytes went back: %d then %d", last.BytesDone, s.BytesDone)
		}
		if last != nil && s.Phase == "targets" && s.BytesDone > last.BytesDone && s.BytesDone < updates*size {
			growing++
		}
		maxTotal = max(maxTotal, s.BytesTotal)
		last = s
	}
	if growing < 2 {
		t.Fatalf("saw the bytes grow during the sync %d times, want at least 2 (%d observations: first %+v, last %+v)", growing, len(seen), seen[0], *last)
	}
	if !phases["targets"] || maxTotal != updates*size || last.UpdatesTotal != updates {
		t.Fatalf("phases %v, largest byte total %d (want %d), last %+v", phases, maxTotal, updates*size, *last)
	}
	var h struct{ Runs []store.SyncRun }
	json.Unmarshal(site.admin("GET", "/api/v1/sync?limit=1", nil, 200), &h)
	if len(h.Runs) != 1 || h.Runs[0].ID != seen[0].ID || h.Runs[0].Status != store.SyncOK || h.Runs[0].BytesFetched < updates*size {
		t.Fatalf("history: %+v", h.Runs)
	}
}
