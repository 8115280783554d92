package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// The statements of the hot paths (check-in, report, enrollment) are
// prepared once when the store opens (Prepare) instead of at every call:
// SQLite parses an unprepared statement on every call, which was a fifth of
// the server CPU of a check-in cycle (docs/BENCHMARKS.md, "Fleet"); pgx
// caches statements itself, so on PostgreSQL this saves little. They are
// prepared before any transaction runs because preparing on a pool needs a
// free connection, which a transaction holding SQLite's only one would
// never give back.
const (
	agentByID = `SELECT ` + agentCols + ` FROM agents WHERE id = $1`
	// agentIdentity: every agent request checks the identity (AgentIdentity).
	agentIdentity = `SELECT id, machine_id, grp, cert_serial, prev_cert_serial, status, flag FROM agents WHERE id = $1`
	tokenByHash   = `SELECT ` + tokenCols + ` FROM tokens WHERE hash = $1`
	groupExists   = `SELECT COUNT(*) FROM groups WHERE name = $1`
	// agentsByMachine: an enrollment looks for other identities of its machine.
	agentsByMachine = `SELECT ` + agentCols + ` FROM agents WHERE machine_id = $1 ORDER BY enrolled_at, id`
	insertAgent     = `INSERT INTO agents (` + agentCols + `) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15)`
	useToken        = `UPDATE tokens SET uses = uses + 1
		WHERE id = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2) AND (max_uses = 0 OR uses < max_uses)`
	// touchAgent moves an agent's last-seen time forward.
	touchAgent = `UPDATE agents SET last_seen = $2 WHERE id = $1 AND last_seen < $2`
	markReport = `INSERT INTO reports (agent_id, batch_id, received_at) VALUES ($1,$2,$3) ON CONFLICT (agent_id, batch_id) DO NOTHING`
	// setComplianceSeen ends a report: the agent's figures and (as
	// touchAgent) its last-seen time in one update of its row.
	setComplianceSeen = setCompliance + `,
	last_seen = CASE WHEN last_seen < $2 THEN $2 ELSE last_seen END WHERE id = $1`
	// A report's changes, several rows a statement (valueRows appended).
	insertEvents    = `INSERT INTO state_events (agent_id, vendor, update_id, state, detail, at) VALUES `
	upsertStates    = `INSERT INTO agent_states (agent_id, vendor, update_id, state, detail, updated_at) VALUES `
	upsertStatesEnd = `
	ON CONFLICT (agent_id, vendor, update_id) DO UPDATE SET state = excluded.state, detail = excluded.detail,
		updated_at = excluded.updated_at WHERE excluded.updated_at >= agent_states.updated_at`
)

// maxChangeRows bounds the report changes' statements prepared for each
// number of rows (1 to maxChangeRows-1); longer ones are written out.
const maxChangeRows = 17

var (
	hotReads  = []string{agentByID, agentIdentity, tokenByHash, groupExists, agentsByMachine}
	hotWrites = append([]string{insertAgent, useToken, touchAgent, markReport, setComplianceSeen},
		append(insertEventRows[1:], upsertStateRows[1:]...)...)
	// insertEventRows[n] and upsertStateRows[n] store n changes.
	insertEventRows, upsertStateRows = changeRows()
)

func changeRows() (events, states []string) {
	events, states = make([]string, maxChangeRows), make([]string, maxChangeRows)
	for n := 1; n < maxChangeRows; n++ {
		events[n] = insertEvents + valueRows(n)
		states[n] = upsertStates + valueRows(n) + upsertStatesEnd
	}
	return events, states
}

// valueRows is the VALUES list of n rows of six parameters.
func valueRows(n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "($%d,$%d,$%d,$%d,$%d,$%d)", 6*i+1, 6*i+2, 6*i+3, 6*i+4, 6*i+5, 6*i+6)
	}
	return b.String()
}

// Prepare prepares the hot paths' statements; a store that was not
// prepared runs them unprepared.
func (d *DB) Prepare(ctx context.Context) error {
	d.stmts = map[*sql.DB]map[string]*sql.Stmt{}
	for db, qs := range map[*sql.DB][]string{d.reader(): hotReads, d.db: hotWrites} {
		if d.stmts[db] == nil {
			d.stmts[db] = map[string]*sql.Stmt{}
		}
		for _, q := range qs {
			st, err := db.PrepareContext(ctx, q)
			if err != nil {
				d.closeStmts()
				return fmt.Errorf("prepare %.40q…: %w", q, err)
			}
			d.stmts[db][q] = st
		}
	}
	return nil
}

func (d *DB) closeStmts() {
	for _, m := range d.stmts {
		for _, st := range m {
			st.Close()
		}
	}
	d.stmts = nil
}

// queryRow runs a one-row query of the hot paths on the reader.
func (d *DB) queryRow(ctx context.Context, q string, args ...any) *sql.Row {
	if st := d.stmts[d.reader()][q]; st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return d.reader().QueryRowContext(ctx, q, args...)
}

// query runs a query of the hot paths on the reader.
func (d *DB) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	if st := d.stmts[d.reader()][q]; st != nil {
		return st.QueryContext(ctx, args...)
	}
	return d.reader().QueryContext(ctx, q, args...)
}

// exec runs a write of the hot paths outside a transaction.
func (d *DB) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return d.stmt(q).ExecContext(ctx, q, args...)
}

// execer runs a statement given by its text; a prepared statement ignores
// the text.
type execer interface {
	ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error)
}

// stmtExecer is a prepared statement as an execer.
type stmtExecer struct{ st *sql.Stmt }

func (s stmtExecer) ExecContext(ctx context.Context, _ string, args ...any) (sql.Result, error) {
	return s.st.ExecContext(ctx, args...)
}

// stmt is the writer's prepared statement for q, or the writer itself
// (which parses q) when q was not prepared.
func (d *DB) stmt(q string) execer {
	if st := d.stmts[d.db][q]; st != nil {
		return stmtExecer{st}
	}
	return d.db
}

// txStmt returns q for use in tx: the prepared statement bound to the
// transaction's connection (prepared there at most once), or q prepared
// for this transaction only. Either is closed with the transaction.
func (d *DB) txStmt(ctx context.Context, tx *sql.Tx, q string) (*sql.Stmt, error) {
	if st := d.stmts[d.db][q]; st != nil {
		return tx.StmtContext(ctx, st), nil
	}
	return tx.PrepareContext(ctx, q)
}

// txStmts binds the hot paths' statements to one transaction as they are
// first used in it (tx.StmtContext costs a lookup and an allocation, so a
// transaction pays only for the statements it runs).
type txStmts struct {
	d     *DB
	tx    *sql.Tx
	bound map[string]*sql.Stmt
}

func (d *DB) newTxStmts(tx *sql.Tx) *txStmts { return &txStmts{d: d, tx: tx} }

// exec runs q in the transaction, prepared when q is a hot path's
// statement.
func (t *txStmts) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	st := t.bound[q]
	if st == nil {
		p := t.d.stmts[t.d.db][q]
		if p == nil {
			return t.tx.ExecContext(ctx, q, args...)
		}
		st = t.tx.StmtContext(ctx, p)
		if t.bound == nil {
			t.bound = map[string]*sql.Stmt{}
		}
		t.bound[q] = st
	}
	return st.ExecContext(ctx, args...)
}
