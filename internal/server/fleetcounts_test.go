package server

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/store/sqlite"
	"github.com/bulwarkhq/bulwark/internal/wire"
)

// TestAttackBogusReportKeys: an enrolled agent (or whoever holds its
// certificate) cannot fill the state table with made-up update keys; only
// updates the server indexed are accepted, so an agent's rows are bounded
// by the catalog.
func TestAttackBogusReportKeys(t *testing.T) {
	ts := startServer(t, Config{})
	ts.knowUpdates("example", "BW-1")
	a := ts.enroll(ts.first.EnrollToken, machineA, "")
	now := time.Now().UTC()
	flood := wire.ReportRequest{BatchID: "flood-1"}
	for i := range maxReportChanges {
		flood.Changes = append(flood.Changes, wire.StateChange{Key: fmt.Sprintf("example/BOGUS-%d", i), State: "failed", Time: now})
	}
	tests := []struct {
		name string
		rep  wire.ReportRequest
	}{
		{"a flood of unknown ids of a known vendor", flood},
		{"an unknown vendor", wire.ReportRequest{BatchID: "b-2", Changes: []wire.StateChange{{Key: "nope/BW-1", State: "installed", Time: now}}}},
		{"one unknown key among known ones", wire.ReportRequest{BatchID: "b-3", Changes: []wire.StateChange{
			{Key: "example/BW-1", State: "installed", Time: now}, {Key: "example/BW-9", State: "installed", Time: now}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body, _ := ts.agentDo(a, a.client, "POST", "/agent/v1/report", tt.rep, nil)
			if code != http.StatusUnprocessableEntity {
				t.Fatalf("report = %d %s, want 422", code, body)
			}
			t.Logf("refused: %s", body)
			if st, _ := ts.st.AgentStates(t.Context(), a.resp.AgentID); len(st) != 0 {
				t.Fatalf("refused report stored %d states", len(st))
			}
		})
	}
	ok := wire.ReportRequest{BatchID: "b-4", Changes: []wire.StateChange{{Key: "example/BW-1", State: "installed", Time: now}}}
	if code, body, _ := ts.agentDo(a, a.client, "POST", "/agent/v1/report", ok, nil); code != 200 {
		t.Fatalf("report of a known update: %d %s", code, body)
	}
}

// countingStore counts the aggregate queries that / and /metrics used to
// run per request.
type countingStore struct {
	Store
	aggregates atomic.Int64
}

func (c *countingStore) StateCounts(ctx context.Context) (map[string]map[string]int, error) {
	c.aggregates.Add(1)
	return c.Store.StateCounts(ctx)
}

func (c *countingStore) AgentCounts(ctx context.Context) (map[string]int, error) {
	c.aggregates.Add(1)
	return c.Store.AgentCounts(ctx)
}

// TestAttackStatusAndMetricsDoNotAggregatePerRequest: the unauthenticated
// /, /healthz and /metrics serve counts computed off the request path, so
// a flood of them costs the store nothing.
func TestAttackStatusAndMetricsDoNotAggregatePerRequest(t *testing.T) {
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "bulwark.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	st := &countingStore{Store: db}
	ts := startServer(t, Config{Store: st})
	ts.refreshFleet(t.Context())
	before := st.aggregates.Load()
	for range 50 {
		for _, p := range []string{"/", "/metrics", "/healthz"} {
			if code, body, _ := ts.do(ts.client, "GET", p, "", nil); code != 200 {
				t.Fatalf("GET %s = %d %s", p, code, body)
			}
		}
	}
	// The background refresh may run once or twice meanwhile (every
	// fleetRefresh); 150 requests must not add 150 aggregates.
	if n := st.aggregates.Load() - before; n > 4 {
		t.Fatalf("150 requests to /, /metrics and /healthz ran %d aggregate queries", n)
	}
}
