package sqlstore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/store"
	"github.com/bulwarkhq/bulwark/internal/store/postgres"
	"github.com/bulwarkhq/bulwark/internal/store/postgres/pgtest"
	"github.com/bulwarkhq/bulwark/internal/store/sqlite"
	"github.com/bulwarkhq/bulwark/internal/store/sqlstore"
)

// fleetComputers is how many computers share the same five updates in the
// compliance tests: enough that reading all their states shows. The tests
// look at the one stored last, whose states come last among each update's.
const (
	fleetComputers = 3000
	last           = fleetComputers - 1
)

// fillFleet stores fleetComputers computers and five updates; ANALYZE runs
// before their states go in (the statistics of a fleet whose states grew
// after the last ANALYZE: its first storm after an approval), then every
// computer gets a state for each update.
func fillFleet(t *testing.T, db *sqlstore.DB) {
	t.Helper()
	ctx := context.Background()
	var ups []store.Update
	for _, id := range []string{"U-1", "U-2", "U-3", "U-4", "U-5"} {
		ups = append(ups, store.Update{Vendor: "v", ID: id, Title: id, Product: "debian-12", Classification: "security",
			Severity: "critical", SHA256: "x", IndexedAt: time.Now()})
	}
	if err := db.UpsertUpdates(ctx, ups); err != nil {
		t.Fatal(err)
	}
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := db.SQL().ExecContext(ctx, q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	tx, err := db.SQL().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	agent, err := tx.PrepareContext(ctx, `INSERT INTO agents (id, machine_id, hostname, os, arch, grp, cert_serial, status, enrolled_at, last_seen)
		VALUES ($1, $2, $1, 'debian 12', 'amd64', 'default', $1, 'active', 1, 1)`)
	if err != nil {
		t.Fatal(err)
	}
	for i := range fleetComputers {
		if _, err := agent.ExecContext(ctx, agentID(i), fmt.Sprintf("%032x", i+1)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	exec(`ANALYZE`)
	exec(`INSERT INTO agent_states (agent_id, vendor, update_id, state, detail, updated_at)
		SELECT a.id, u.vendor, u.id, 'needed', '', 1 FROM agents a, updates u`)
}

func agentID(i int) string { return fmt.Sprintf("agt-%04d", i) }

// TestComplianceReadsOneComputersStates: a report refreshes its computer's
// compliance figures by reading that computer's states, not every state of
// the updates it has. Written as counts that each joined updates first,
// PostgreSQL planned them from the updates' side with the statistics of a
// fleet before its first storm: for each update it read the update's
// states in index order until it met this computer's, all 3,000 for the
// computer stored last (15,000 rows removed by a filter): a report's cost
// grew with the fleet.
func TestComplianceReadsOneComputersStates(t *testing.T) {
	ctx := context.Background()
	pg := pgtest.Start(t, pgtest.Options{})
	db, err := postgres.Open(ctx, pg.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	fillFleet(t, db.DB)

	tx, err := db.SQL().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	var plan string
	if err := tx.QueryRowContext(ctx, `EXPLAIN (ANALYZE, FORMAT JSON) `+sqlstore.RefreshComplianceSQL, agentID(last), 2).Scan(&plan); err != nil {
		t.Fatal(err)
	}
	var nodes []struct{ Plan planNode }
	if err := json.Unmarshal([]byte(plan), &nodes); err != nil || len(nodes) != 1 {
		t.Fatalf("EXPLAIN output %q: %v", plan, err)
	}
	// The computer's row, its 5 states and the 5 updates: a few dozen
	// rows at most with any plan that starts from the computer.
	if read := nodes[0].Plan.rowsRead(); read > 100 {
		t.Errorf("refreshing one computer's compliance read %.0f rows among %d computers' states, want the computer's own (under 100); plan:\n%s",
			read, fleetComputers, plan)
	}
	var got [5]int
	if err := tx.QueryRowContext(ctx, `SELECT miss_critical, miss_important, miss_other, failed, pending_reboot FROM agents WHERE id = $1`,
		agentID(last)).Scan(&got[0], &got[1], &got[2], &got[3], &got[4]); err != nil {
		t.Fatal(err)
	}
	if got != [5]int{5, 0, 0, 0, 0} {
		t.Errorf("figures after the refresh = %v, want 5 critical missing and nothing else", got)
	}
}

// planNode is a node of PostgreSQL's EXPLAIN (ANALYZE, FORMAT JSON).
type planNode struct {
	Rows             float64    `json:"Actual Rows"`
	Loops            float64    `json:"Actual Loops"`
	RemovedByFilter  float64    `json:"Rows Removed by Filter"`
	RemovedByRecheck float64    `json:"Rows Removed by Index Recheck"`
	Plans            []planNode `json:"Plans"`
}

// rowsRead is how many rows the node and the nodes under it produced or
// read and threw away (the counts are per loop).
func (n planNode) rowsRead() float64 {
	total := (n.Rows + n.RemovedByFilter + n.RemovedByRecheck) * max(n.Loops, 1)
	for _, c := range n.Plans {
		total += c.rowsRead()
	}
	return total
}

// TestComplianceReadsOneComputersStatesSQLite: SQLite finds the computer's
// states by the leading column of their key.
func TestComplianceReadsOneComputersStatesSQLite(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "bulwark.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	fillFleet(t, db)
	rows, err := db.SQL().QueryContext(ctx, `EXPLAIN QUERY PLAN `+sqlstore.RefreshComplianceSQL, agentID(last), 2)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	text := strings.Join(plan, "\n")
	if !strings.Contains(text, "SEARCH s USING INDEX sqlite_autoindex_agent_states_1 (agent_id=?)") || strings.Contains(text, "SCAN s") {
		t.Errorf("the compliance refresh does not find the computer's states by its id; plan:\n%s", text)
	}
	var got [5]int
	if _, err := db.SQL().ExecContext(ctx, sqlstore.RefreshComplianceSQL, agentID(last), 2); err != nil {
		t.Fatal(err)
	}
	if err := db.SQL().QueryRowContext(ctx, `SELECT miss_critical, miss_important, miss_other, failed, pending_reboot FROM agents WHERE id = $1`,
		agentID(last)).Scan(&got[0], &got[1], &got[2], &got[3], &got[4]); err != nil {
		t.Fatal(err)
	}
	if got != [5]int{5, 0, 0, 0, 0} {
		t.Errorf("figures after the refresh = %v, want 5 critical missing and nothing else", got)
	}
}
