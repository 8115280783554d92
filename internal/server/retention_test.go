package server

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/store"
	"github.com/bulwarkhq/bulwark/internal/wire"
)

// TestPruneFollowsPolicy: the configured retention decides what a pruning
// pass deletes, and the default keeps a month of batch ids.
func TestPruneFollowsPolicy(t *testing.T) {
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	ts := startServer(t, Config{Now: now, Retention: &store.Retention{Reports: 2 * time.Hour}})
	tok := ts.newToken(TokenRequest{Kind: "enroll", Group: "default", ExpiresIn: "1h"})
	a := ts.enroll(tok, machineA, "")
	ts.knowUpdates("example", "BW-1")
	rep := wire.ReportRequest{BatchID: "b-1", Changes: []wire.StateChange{{Key: "example/BW-1", State: "needed", Time: now()}}}
	if code, body, _ := ts.agentDo(a, a.client, "POST", "/agent/v1/report", rep, nil); code != http.StatusOK {
		t.Fatalf("report: %d %s", code, body)
	}
	if n := ts.prune(context.Background()); n["reports"] != 0 {
		t.Fatalf("pruned a fresh report: %v", n)
	}
	clock.Add(int64(3 * time.Hour))
	if n := ts.prune(context.Background()); n["reports"] != 1 {
		t.Fatalf("after 3 h with 2 h kept: pruned %v, want 1 report", n)
	}
	if r := (&Server{}).retention(); r != store.DefaultRetention || r.Reports != 30*24*time.Hour {
		t.Fatalf("default retention = %+v", r)
	}
}
