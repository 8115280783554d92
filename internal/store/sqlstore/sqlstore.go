// Package sqlstore is the server's store written once in database/sql for
// both backends: SQLite (store/sqlite) and PostgreSQL (store/postgres) open
// a *sql.DB, migrate it (store/migrations) and hand it to New with their
// Dialect.
//
// Its SQL stays portable ($N placeholders, BIGINT unix-millisecond times,
// INTEGER 0/1 flags, ON CONFLICT upserts, RETURNING) so both dialects run
// the same queries. It must not open databases or hold state outside the
// database, nor decide anything a caller should: it stores and returns
// records.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/bulwarkhq/bulwark/internal/store"
)

// Dialect is what differs between backends once the SQL is the same: how
// their drivers report a constraint violation.
type Dialect struct {
	Name         string           // "sqlite" or "postgres" (store/migrations)
	IsUnique     func(error) bool // a unique or primary key violation
	IsForeignKey func(error) bool // a foreign key violation
}

// DB is a store over one migrated database.
type DB struct {
	db      *sql.DB
	rdb     *sql.DB // reads of the hot paths; nil: db (WithReader)
	dialect Dialect
	stmts   map[*sql.DB]map[string]*sql.Stmt // hot paths' statements (Prepare)
}

// New wraps a migrated database.
func New(db *sql.DB, d Dialect) *DB { return &DB{db: db, dialect: d} }

// WithReader has the hot paths' reads (an agent by id, a token by hash) use
// r, a read-only pool of the same database: SQLite's one writer connection
// then never makes a check-in wait behind a report's transaction. The DB
// closes r.
func (d *DB) WithReader(r *sql.DB) *DB {
	d.rdb = r
	return d
}

func (d *DB) reader() *sql.DB {
	if d.rdb != nil {
		return d.rdb
	}
	return d.db
}

// SQL returns the underlying database (for migration and maintenance).
func (d *DB) SQL() *sql.DB { return d.db }

// Dialect returns the backend's dialect.
func (d *DB) Dialect() Dialect { return d.dialect }

// Close closes the database.
func (d *DB) Close() error {
	d.closeStmts()
	if d.rdb != nil {
		d.rdb.Close()
	}
	return d.db.Close()
}

func ms(t time.Time) int64 { return t.UnixMilli() }

func msPtr(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UnixMilli()
}

// msOrZero stores the zero time as 0.
func msOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMS(v int64) time.Time { return time.UnixMilli(v).UTC() }

func fromNull(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := fromMS(v.Int64)
	return &t
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func one(res sql.Result, err error) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return store.ErrNotFound
	}
	return nil
}

// Tokens.

const tokenCols = `id, kind, name, hash, role, grp, client_group, max_uses, uses, expires_at, revoked_at, created_at`

func scanToken(s interface{ Scan(...any) error }) (*store.Token, error) {
	var t store.Token
	var cg int
	var exp, rev sql.NullInt64
	var created int64
	if err := s.Scan(&t.ID, &t.Kind, &t.Name, &t.Hash, &t.Role, &t.Group, &cg, &t.MaxUses, &t.Uses, &exp, &rev, &created); err != nil {
		return nil, err
	}
	t.ClientGroup = cg != 0
	t.ExpiresAt, t.RevokedAt, t.CreatedAt = fromNull(exp), fromNull(rev), fromMS(created)
	return &t, nil
}

// CreateToken stores a new token.
func (d *DB) CreateToken(ctx context.Context, t *store.Token) error {
	_, err := d.db.ExecContext(ctx, `INSERT INTO tokens (`+tokenCols+`) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12)`,
		t.ID, t.Kind, t.Name, t.Hash, t.Role, t.Group, b2i(t.ClientGroup), t.MaxUses, t.Uses, msPtr(t.ExpiresAt), msPtr(t.RevokedAt), ms(t.CreatedAt))
	if d.dialect.IsUnique(err) {
		return fmt.Errorf("token %s: %w", t.ID, store.ErrExists)
	}
	return err
}

// TokenByHash finds a token by the hash of its secret.
func (d *DB) TokenByHash(ctx context.Context, hash string) (*store.Token, error) {
	t, err := scanToken(d.queryRow(ctx, tokenByHash, hash))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	return t, err
}

// ListTokens lists tokens of one kind ("" for all), oldest first.
func (d *DB) ListTokens(ctx context.Context, kind string) ([]store.Token, error) {
	return queryList(ctx, d.db, scanToken, `SELECT `+tokenCols+` FROM tokens WHERE ($1 = '' OR kind = $1) ORDER BY created_at, id`, kind)
}

// RevokeToken revokes a token; revoking twice keeps the first time.
func (d *DB) RevokeToken(ctx context.Context, id string, at time.Time) error {
	return one(d.db.ExecContext(ctx, `UPDATE tokens SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1`, id, ms(at)))
}

// RevokeTokenKeepingAdmin revokes a token unless it is the last usable
// admin API token (store.ErrLastAdmin). The check and the revocation are one
// transaction that first locks every admin token row, so concurrent revokes
// (from any number of server processes on one database) are serialised and
// cannot each revoke one of the last two.
func (d *DB) RevokeTokenKeepingAdmin(ctx context.Context, id string, at time.Time) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	// A write first: PostgreSQL locks the admin rows (a second revoker
	// waits here until this one commits, then sees its result); SQLite
	// takes its write lock.
	if _, err := tx.ExecContext(ctx, `UPDATE tokens SET revoked_at = revoked_at WHERE kind = $1 AND role = $2`, store.KindAPI, store.RoleAdmin); err != nil {
		return err
	}
	t, err := scanToken(tx.QueryRowContext(ctx, `SELECT `+tokenCols+` FROM tokens WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return store.ErrNotFound
	} else if err != nil {
		return err
	}
	if t.Kind == store.KindAPI && t.Role == store.RoleAdmin && t.Usable(at) {
		var others int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM tokens WHERE kind = $1 AND role = $2 AND id <> $3
			AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $4) AND (max_uses = 0 OR uses < max_uses)`,
			store.KindAPI, store.RoleAdmin, id, ms(at)).Scan(&others); err != nil {
			return err
		}
		if others == 0 {
			return fmt.Errorf("token %s: %w", id, store.ErrLastAdmin)
		}
	}
	if err := one(tx.ExecContext(ctx, `UPDATE tokens SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1`, id, ms(at))); err != nil {
		return err
	}
	return tx.Commit()
}

// UseToken counts one use of a usable token.
func (d *DB) UseToken(ctx context.Context, id string, now time.Time) error {
	res, err := d.exec(ctx, useToken, id, ms(now))
	if err := one(res, err); errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("token %s: %w", id, store.ErrExhausted)
	} else if err != nil {
		return err
	}
	return nil
}

// Groups and approvals.

// CreateGroup makes a group.
func (d *DB) CreateGroup(ctx context.Context, name string, at time.Time) error {
	_, err := d.db.ExecContext(ctx, `INSERT INTO groups (name, created_at) VALUES ($1, $2)`, name, ms(at))
	if d.dialect.IsUnique(err) {
		return fmt.Errorf("group %s: %w", name, store.ErrExists)
	}
	return err
}

// ListGroups lists groups by name with their computer counts.
func (d *DB) ListGroups(ctx context.Context) ([]store.Group, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT g.name, g.created_at, (SELECT COUNT(*) FROM agents a WHERE a.grp = g.name)
		FROM groups g ORDER BY g.name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Group
	for rows.Next() {
		var g store.Group
		var c int64
		if err := rows.Scan(&g.Name, &c, &g.Computers); err != nil {
			return nil, err
		}
		g.CreatedAt = fromMS(c)
		out = append(out, g)
	}
	return out, rows.Err()
}

// DeleteGroup deletes a group and its approvals and moves its computers.
func (d *DB) DeleteGroup(ctx context.Context, name, moveTo string) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := one(tx.ExecContext(ctx, `DELETE FROM groups WHERE name = $1`, name)); err != nil {
		return fmt.Errorf("group %s: %w", name, err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM approvals WHERE grp = $1`, name); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE agents SET grp = $2 WHERE grp = $1`, name, moveTo); err != nil {
		return err
	}
	return tx.Commit()
}

// SetApproval creates or replaces one approval.
func (d *DB) SetApproval(ctx context.Context, a *store.Approval) error {
	_, err := d.db.ExecContext(ctx, `INSERT INTO approvals (grp, vendor, update_id, action, deadline, rollout, by_token, updated_at)
		VALUES ($1,$2,$3,$4,$5,$6,$7,$8)
		ON CONFLICT (grp, vendor, update_id) DO UPDATE SET action = excluded.action, deadline = excluded.deadline,
			rollout = excluded.rollout, by_token = excluded.by_token, updated_at = excluded.updated_at`,
		a.Group, a.Vendor, a.UpdateID, a.Action, msPtr(a.Deadline), a.Rollout, a.By, ms(a.UpdatedAt))
	if d.dialect.IsForeignKey(err) {
		return fmt.Errorf("group %s: %w", a.Group, store.ErrNotFound)
	}
	return err
}

// DeleteApproval removes one approval.
func (d *DB) DeleteApproval(ctx context.Context, group, vendor, id string) error {
	err := one(d.db.ExecContext(ctx, `DELETE FROM approvals WHERE grp = $1 AND vendor = $2 AND update_id = $3`, group, vendor, id))
	if err != nil {
		return fmt.Errorf("approval %s/%s in %s: %w", vendor, id, group, err)
	}
	return nil
}

// GroupExists says whether a group exists.
func (d *DB) GroupExists(ctx context.Context, group string) (bool, error) {
	var n int
	err := d.queryRow(ctx, groupExists, group).Scan(&n)
	return n > 0, err
}

// Approvals lists a group's approvals by vendor and id.
func (d *DB) Approvals(ctx context.Context, group string) ([]store.Approval, error) {
	var exists int
	if err := d.queryRow(ctx, groupExists, group).Scan(&exists); err != nil {
		return nil, err
	}
	if exists == 0 {
		return nil, fmt.Errorf("group %s: %w", group, store.ErrNotFound)
	}
	rows, err := d.db.QueryContext(ctx, `SELECT grp, vendor, update_id, action, deadline, rollout, by_token, updated_at
		FROM approvals WHERE grp = $1 ORDER BY vendor, update_id`, group)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []store.Approval{}
	for rows.Next() {
		var a store.Approval
		var dl sql.NullInt64
		var up int64
		if err := rows.Scan(&a.Group, &a.Vendor, &a.UpdateID, &a.Action, &dl, &a.Rollout, &a.By, &up); err != nil {
			return nil, err
		}
		a.Deadline, a.UpdatedAt = fromNull(dl), fromMS(up)
		out = append(out, a)
	}
	return out, rows.Err()
}

// Agents.

const agentCols = `id, machine_id, hostname, os, arch, grp, cert_serial, status, flag, token_id, enrolled_at, last_seen, inventory, cert_not_after, prev_cert_serial`

func scanAgent(s interface{ Scan(...any) error }) (*store.Agent, error) {
	var a store.Agent
	var en, seen, notAfter int64
	var inv sql.NullString
	if err := s.Scan(&a.ID, &a.MachineID, &a.Hostname, &a.OS, &a.Arch, &a.Group, &a.CertSerial, &a.Status, &a.Flag, &a.TokenID, &en, &seen, &inv, &notAfter, &a.PrevCertSerial); err != nil {
		return nil, err
	}
	a.EnrolledAt, a.LastSeen = fromMS(en), fromMS(seen)
	if notAfter != 0 {
		a.CertNotAfter = fromMS(notAfter)
	}
	if inv.Valid {
		a.Inventory = []byte(inv.String)
	}
	return &a, nil
}

// CreateAgent stores a newly enrolled agent.
func (d *DB) CreateAgent(ctx context.Context, a *store.Agent) error {
	return d.insertAgent(ctx, d.stmt(insertAgent), a)
}

// insertAgent runs the prepared insert (or the plain statement) st for a.
func (d *DB) insertAgent(ctx context.Context, st execer, a *store.Agent) error {
	var inv any
	if a.Inventory != nil {
		inv = string(a.Inventory)
	}
	_, err := st.ExecContext(ctx, insertAgent,
		a.ID, a.MachineID, a.Hostname, a.OS, a.Arch, a.Group, a.CertSerial, a.Status, a.Flag, a.TokenID, ms(a.EnrolledAt), ms(a.LastSeen), inv, msOrZero(a.CertNotAfter), a.PrevCertSerial)
	if d.dialect.IsUnique(err) {
		return fmt.Errorf("agent %s: %w", a.ID, store.ErrExists)
	}
	return err
}

// EnrollAgents stores several enrollments in one transaction (group
// commit): for each, one use of its token and, when the token was still
// usable, its agent. errs[i] is store.ErrExhausted for an enrollment whose
// token was used up, revoked or expired (nothing stored for it); err fails
// them all (nothing stored), as any failed statement aborts a PostgreSQL
// transaction: the caller can retry them one by one.
func (d *DB) EnrollAgents(ctx context.Context, es []store.Enrollment) (errs []error, err error) {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	use, err := d.txStmt(ctx, tx, useToken)
	if err != nil {
		return nil, err
	}
	ins, err := d.txStmt(ctx, tx, insertAgent)
	if err != nil {
		return nil, err
	}
	errs = make([]error, len(es))
	for i, e := range es {
		if err := one(use.ExecContext(ctx, e.TokenID, ms(e.At))); errors.Is(err, store.ErrNotFound) {
			errs[i] = fmt.Errorf("token %s: %w", e.TokenID, store.ErrExhausted)
			continue
		} else if err != nil {
			return nil, err
		}
		if err := d.insertAgent(ctx, stmtExecer{ins}, e.Agent); err != nil {
			return nil, err
		}
	}
	return errs, tx.Commit()
}

// Agent returns one agent.
func (d *DB) Agent(ctx context.Context, id string) (*store.Agent, error) {
	a, err := scanAgent(d.queryRow(ctx, agentByID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("agent %s: %w", id, store.ErrNotFound)
	}
	return a, err
}

// AgentIdentity is what every agent request checks of its agent (id,
// machine id, group, certificate serials, status and flag); the other
// fields are left empty. It reads a few short columns where Agent reads the
// whole row (the inventory can be tens of KiB).
func (d *DB) AgentIdentity(ctx context.Context, id string) (*store.Agent, error) {
	var a store.Agent
	err := d.queryRow(ctx, agentIdentity, id).Scan(&a.ID, &a.MachineID, &a.Group, &a.CertSerial, &a.PrevCertSerial, &a.Status, &a.Flag)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("agent %s: %w", id, store.ErrNotFound)
	} else if err != nil {
		return nil, err
	}
	return &a, nil
}

// ListAgents lists agents, of one group or all ("").
func (d *DB) ListAgents(ctx context.Context, group string) ([]store.Agent, error) {
	return queryList(ctx, d.db, scanAgent, `SELECT `+agentCols+` FROM agents WHERE ($1 = '' OR grp = $1) ORDER BY hostname, id`, group)
}

// AgentsByMachine lists the agents enrolled from one machine id.
func (d *DB) AgentsByMachine(ctx context.Context, machineID string) ([]store.Agent, error) {
	rows, err := d.query(ctx, agentsByMachine, machineID)
	return scanList(rows, err, scanAgent)
}

// DeleteAgent removes an agent with its states and reports.
func (d *DB) DeleteAgent(ctx context.Context, id string) error {
	if err := one(d.db.ExecContext(ctx, `DELETE FROM agents WHERE id = $1`, id)); err != nil {
		return fmt.Errorf("agent %s: %w", id, err)
	}
	return nil
}

// MoveAgents puts agents in a group, all or none.
func (d *DB) MoveAgents(ctx context.Context, ids []string, group string) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, id := range ids {
		if err := one(tx.ExecContext(ctx, `UPDATE agents SET grp = $2 WHERE id = $1`, id, group)); err != nil {
			return fmt.Errorf("agent %s: %w", id, err)
		}
	}
	return tx.Commit()
}

// RenewAgentCert replaces the certificate of agent id that has serial from
// (its current one, or the one a lost renewal replaced) with serial to,
// expiring at notAfter. Another serial is store.ErrNotFound: a renewal
// from a certificate the agent no longer holds changes nothing.
func (d *DB) RenewAgentCert(ctx context.Context, id, from, to string, notAfter time.Time) error {
	err := one(d.db.ExecContext(ctx, `UPDATE agents SET
		prev_cert_serial = CASE WHEN cert_serial = $2 THEN cert_serial ELSE prev_cert_serial END,
		cert_serial = $3, cert_not_after = $4
		WHERE id = $1 AND (cert_serial = $2 OR (prev_cert_serial = $2 AND prev_cert_serial <> ''))`, id, from, to, ms(notAfter)))
	if err != nil {
		return fmt.Errorf("agent %s certificate %s: %w", id, from, err)
	}
	return nil
}

// CertExpiry counts the active agents whose certificate expires before each
// time in before, and returns the earliest expiry among them (zero when
// none is recorded).
func (d *DB) CertExpiry(ctx context.Context, before []time.Time) ([]int, time.Time, error) {
	counts := make([]int, len(before))
	for i, b := range before {
		if err := d.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM agents WHERE status = $1 AND cert_not_after > 0 AND cert_not_after < $2`,
			store.AgentActive, ms(b)).Scan(&counts[i]); err != nil {
			return nil, time.Time{}, err
		}
	}
	var min sql.NullInt64
	if err := d.db.QueryRowContext(ctx, `SELECT MIN(cert_not_after) FROM agents WHERE status = $1 AND cert_not_after > 0`, store.AgentActive).Scan(&min); err != nil {
		return nil, time.Time{}, err
	}
	if !min.Valid {
		return counts, time.Time{}, nil
	}
	return counts, fromMS(min.Int64), nil
}

// ForgetPrevCert stops accepting the certificate the last renewal replaced,
// once the agent has used the new one.
func (d *DB) ForgetPrevCert(ctx context.Context, id string) error {
	_, err := d.db.ExecContext(ctx, `UPDATE agents SET prev_cert_serial = '' WHERE id = $1`, id)
	return err
}

// SetAgentStatus changes an agent's status.
func (d *DB) SetAgentStatus(ctx context.Context, id, status, flag string) error {
	if err := one(d.db.ExecContext(ctx, `UPDATE agents SET status = $2, flag = $3 WHERE id = $1`, id, status, flag)); err != nil {
		return fmt.Errorf("agent %s: %w", id, err)
	}
	return nil
}

// TouchAgent records that an agent was seen.
func (d *DB) TouchAgent(ctx context.Context, id string, at time.Time) error {
	return one(d.db.ExecContext(ctx, `UPDATE agents SET last_seen = $2 WHERE id = $1 AND last_seen < $2`, id, ms(at)))
}

// TouchAgents records several agents' last-seen times in one transaction,
// in agent order (no lock cycles between PostgreSQL replicas).
func (d *DB) TouchAgents(ctx context.Context, seen map[string]time.Time) error {
	ids := make([]string, 0, len(seen))
	for id := range seen {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	st, err := d.txStmt(ctx, tx, touchAgent)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if _, err := st.ExecContext(ctx, id, ms(seen[id])); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// ApplyReport stores one batch once.
func (d *DB) ApplyReport(ctx context.Context, r *store.Report) (bool, error) {
	applied, err := d.ApplyReports(ctx, []*store.Report{r})
	if err != nil {
		return false, err
	}
	return applied[0], nil
}

// ApplyReports stores several batches in one transaction (group commit),
// each once; applied[i] says whether rs[i] was new. A batch for an unknown
// agent fails them all.
//
// A report of up to 16 changes costs four prepared statements on both
// backends: its mark, its changes' events and states (a multi-row
// statement each, applyChanges), and one update of the agent row that
// refreshes its compliance figures and its last-seen time together. On
// PostgreSQL every statement is a round trip; on SQLite each costs a VDBE
// program's start and database/sql's bookkeeping (BenchmarkApplyReports in
// store/sqlite measures a report).
func (d *DB) ApplyReports(ctx context.Context, rs []*store.Report) ([]bool, error) {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	ts := d.newTxStmts(tx)
	applied := make([]bool, len(rs))
	// Rows are locked in agent order, so two replicas' group commits on one
	// PostgreSQL never wait on each other in a cycle (a deadlock).
	order := make([]int, len(rs))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return strings.Compare(rs[a].AgentID, rs[b].AgentID) })
	for _, i := range order {
		r := rs[i]
		res, err := ts.exec(ctx, markReport, r.AgentID, r.BatchID, ms(r.ReceivedAt))
		if d.dialect.IsForeignKey(err) {
			return nil, fmt.Errorf("agent %s: %w", r.AgentID, store.ErrNotFound)
		}
		if err != nil {
			return nil, err
		}
		if n, err := res.RowsAffected(); err != nil {
			return nil, err
		} else if n == 0 {
			continue
		}
		applied[i] = true
		if err := applyChanges(ctx, ts, r.AgentID, r.Changes); err != nil {
			return nil, err
		}
		if r.Lockdown != nil {
			if err := setLockdown(ctx, tx, r.AgentID, r.Lockdown); err != nil {
				return nil, err
			}
		}
		if r.Inventory != nil {
			if _, err := tx.ExecContext(ctx, `UPDATE agents SET inventory = $2 WHERE id = $1`, r.AgentID, string(r.Inventory)); err != nil {
				return nil, err
			}
		}
		// The figures depend only on the agent's states and the index, so
		// they are refreshed here, with the last-seen time, in one update.
		q := touchAgent
		if len(r.Changes) > 0 {
			q = setComplianceSeen
		}
		if _, err := ts.exec(ctx, q, r.AgentID, ms(r.ReceivedAt)); err != nil {
			return nil, err
		}
	}
	return applied, tx.Commit()
}

// applyChanges stores a report's changes in two statements (their events,
// then the states) instead of two a change. Of several changes to one
// update the one applied one by one would leave is kept (the newest; of
// equal times the last), as one statement may not update a row twice.
// Statements of up to maxChangeRows rows are prepared ones; longer parts
// are written out (parsed once for many rows).
func applyChanges(ctx context.Context, ts *txStmts, agentID string, changes []store.UpdateState) error {
	const perStatement = 1000 // 6,000 parameters, under PostgreSQL's 65,535
	for len(changes) > 0 {
		part := changes[:min(len(changes), perStatement)]
		changes = changes[len(part):]
		kept := part
		if repeatsUpdate(part) {
			kept = latestChanges(part)
		}
		for _, q := range []struct {
			prepared []string
			head     string
			tail     string
			rows     []store.UpdateState
		}{{insertEventRows, insertEvents, "", part}, {upsertStateRows, upsertStates, upsertStatesEnd, kept}} {
			args := make([]any, 0, 6*len(q.rows))
			for _, c := range q.rows {
				args = append(args, agentID, c.Vendor, c.UpdateID, c.State, c.Detail, ms(c.UpdatedAt))
			}
			var err error
			if len(q.rows) < len(q.prepared) {
				_, err = ts.exec(ctx, q.prepared[len(q.rows)], args...)
			} else {
				_, err = ts.tx.ExecContext(ctx, q.head+valueRows(len(q.rows))+q.tail, args...)
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// repeatsUpdate says whether changes may hold two changes to one update
// (for a long list, without looking: latestChanges then decides).
func repeatsUpdate(changes []store.UpdateState) bool {
	if len(changes) > 16 {
		return true
	}
	for j := 1; j < len(changes); j++ {
		for _, c := range changes[:j] {
			if c.Vendor == changes[j].Vendor && c.UpdateID == changes[j].UpdateID {
				return true
			}
		}
	}
	return false
}

// latestChanges keeps one change per update: the newest, of equal times
// the last.
func latestChanges(part []store.UpdateState) []store.UpdateState {
	last := map[[2]string]int{}
	var kept []store.UpdateState
	for _, c := range part {
		k := [2]string{c.Vendor, c.UpdateID}
		if j, ok := last[k]; !ok {
			last[k] = len(kept)
			kept = append(kept, c)
		} else if !c.UpdatedAt.Before(kept[j].UpdatedAt) {
			kept[j] = c
		}
	}
	return kept
}

// AgentStates lists an agent's per-update states.
func (d *DB) AgentStates(ctx context.Context, id string) ([]store.UpdateState, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT vendor, update_id, state, detail, updated_at FROM agent_states
		WHERE agent_id = $1 ORDER BY vendor, update_id`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []store.UpdateState{}
	for rows.Next() {
		var s store.UpdateState
		var up int64
		if err := rows.Scan(&s.Vendor, &s.UpdateID, &s.State, &s.Detail, &up); err != nil {
			return nil, err
		}
		s.UpdatedAt = fromMS(up)
		out = append(out, s)
	}
	return out, rows.Err()
}

// StateCounts counts agents per state for each update.
func (d *DB) StateCounts(ctx context.Context) (map[string]map[string]int, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT vendor, update_id, state, COUNT(*) FROM agent_states GROUP BY vendor, update_id, state`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]map[string]int{}
	for rows.Next() {
		var v, id, st string
		var n int
		if err := rows.Scan(&v, &id, &st, &n); err != nil {
			return nil, err
		}
		k := v + "/" + id
		if out[k] == nil {
			out[k] = map[string]int{}
		}
		out[k][st] = n
	}
	return out, rows.Err()
}

// AgentCounts counts agents per status.
func (d *DB) AgentCounts(ctx context.Context) (map[string]int, error) {
	return countBy(ctx, d.db, `SELECT status, COUNT(*) FROM agents GROUP BY status`)
}

// Updates index.

// UpsertUpdates adds or replaces index entries in one transaction.
func (d *DB) UpsertUpdates(ctx context.Context, us []store.Update) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, u := range us {
		if _, err := tx.ExecContext(ctx, `INSERT INTO updates (vendor, id, title, product, classification, severity, released, sha256, indexed_at, cves)
			VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)
			ON CONFLICT (vendor, id) DO UPDATE SET title = excluded.title, product = excluded.product,
				classification = excluded.classification, severity = excluded.severity, released = excluded.released,
				sha256 = excluded.sha256, indexed_at = excluded.indexed_at, cves = excluded.cves`,
			u.Vendor, u.ID, u.Title, u.Product, u.Classification, u.Severity, u.Released, u.SHA256, ms(u.IndexedAt), cveList(u.CVEs)); err != nil {
			return err
		}
		// A severity that changed moves the figures of the computers that
		// reported this update.
		if _, err := tx.ExecContext(ctx, setCompliance+` WHERE id IN (SELECT agent_id FROM agent_states WHERE vendor = $1 AND update_id = $2)`,
			u.Vendor, u.ID); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// UpdateHashes maps id to indexed update.json hash for one vendor.
func (d *DB) UpdateHashes(ctx context.Context, vendor string) (map[string]string, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT id, sha256 FROM updates WHERE vendor = $1`, vendor)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var id, h string
		if err := rows.Scan(&id, &h); err != nil {
			return nil, err
		}
		out[id] = h
	}
	return out, rows.Err()
}

const updateCols = `vendor, id, title, product, classification, severity, released, sha256, indexed_at, cves`

// cveList stores CVE ids as " CVE-1 CVE-2 ", so that LIKE '% id %' finds
// one exactly; "" when there are none.
func cveList(ids []string) string {
	if len(ids) == 0 {
		return ""
	}
	return " " + strings.Join(ids, " ") + " "
}

func scanUpdate(s interface{ Scan(...any) error }) (*store.Update, error) {
	var u store.Update
	var at int64
	var cves string
	if err := s.Scan(&u.Vendor, &u.ID, &u.Title, &u.Product, &u.Classification, &u.Severity, &u.Released, &u.SHA256, &at, &cves); err != nil {
		return nil, err
	}
	u.IndexedAt, u.CVEs = fromMS(at), strings.Fields(cves)
	return &u, nil
}

// ListUpdates lists indexed updates matching f, newest release first.
func (d *DB) ListUpdates(ctx context.Context, f store.UpdateFilter) ([]store.Update, error) {
	return queryList(ctx, d.db, scanUpdate, `SELECT `+updateCols+` FROM updates
		WHERE ($1 = '' OR vendor = $1) AND ($2 = '' OR product = $2) AND ($3 = '' OR classification = $3) AND ($4 = '' OR severity = $4)
			AND ($5 = '' OR cves LIKE '% ' || $5 || ' %')
		ORDER BY released DESC, vendor, id`, f.Vendor, f.Product, f.Classification, f.Severity, f.CVE)
}

// GetUpdate returns one index entry.
func (d *DB) GetUpdate(ctx context.Context, vendor, id string) (*store.Update, error) {
	u, err := scanUpdate(d.db.QueryRowContext(ctx, `SELECT `+updateCols+` FROM updates WHERE vendor = $1 AND id = $2`, vendor, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("update %s/%s: %w", vendor, id, store.ErrNotFound)
	}
	return u, err
}

// Sync history.

// StartSync records a sync that began.
func (d *DB) StartSync(ctx context.Context, r *store.SyncRun) (int64, error) {
	var id int64
	err := d.db.QueryRowContext(ctx, `INSERT INTO sync_runs (vendor, trigger_kind, status, started_at) VALUES ($1,$2,$3,$4) RETURNING id`,
		r.Vendor, r.Trigger, store.SyncRunning, ms(r.StartedAt)).Scan(&id)
	return id, err
}

// FinishSync records how a sync ended.
func (d *DB) FinishSync(ctx context.Context, r *store.SyncRun) error {
	return one(d.db.ExecContext(ctx, `UPDATE sync_runs SET status = $2, error = $3, changed = $4, updates_fetched = $5,
		payloads_fetched = $6, bytes_fetched = $7, finished_at = $8 WHERE id = $1`,
		r.ID, r.Status, r.Error, b2i(r.Changed), r.UpdatesFetched, r.PayloadsFetched, r.BytesFetched, msPtr(r.FinishedAt)))
}

// ListSyncs lists the newest sync runs first.
func (d *DB) ListSyncs(ctx context.Context, limit int) ([]store.SyncRun, error) {
	return d.ListSyncsBefore(ctx, 0, limit)
}

// ListSyncsBefore lists sync runs newest first, older than the run before
// (0: from the newest).
func (d *DB) ListSyncsBefore(ctx context.Context, before int64, limit int) ([]store.SyncRun, error) {
	if limit <= 0 {
		limit = 100
	}
	if before <= 0 {
		before = 1 << 62
	}
	rows, err := d.db.QueryContext(ctx, `SELECT id, vendor, trigger_kind, status, error, changed, updates_fetched, payloads_fetched,
		bytes_fetched, started_at, finished_at FROM sync_runs WHERE id < $2 ORDER BY id DESC LIMIT $1`, limit, before)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []store.SyncRun{}
	for rows.Next() {
		var r store.SyncRun
		var ch int
		var st int64
		var fin sql.NullInt64
		if err := rows.Scan(&r.ID, &r.Vendor, &r.Trigger, &r.Status, &r.Error, &ch, &r.UpdatesFetched, &r.PayloadsFetched,
			&r.BytesFetched, &st, &fin); err != nil {
			return nil, err
		}
		r.Changed, r.StartedAt, r.FinishedAt = ch != 0, fromMS(st), fromNull(fin)
		out = append(out, r)
	}
	return out, rows.Err()
}

// queryList runs a query and scans every row with scan.
func queryList[T any](ctx context.Context, db *sql.DB, scan func(interface{ Scan(...any) error }) (*T, error), q string, args ...any) ([]T, error) {
	rows, err := db.QueryContext(ctx, q, args...)
	return scanList(rows, err, scan)
}

// scanList scans every row of a query that returned rows and err.
func scanList[T any](rows *sql.Rows, err error, scan func(interface{ Scan(...any) error }) (*T, error)) ([]T, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *v)
	}
	return out, rows.Err()
}
