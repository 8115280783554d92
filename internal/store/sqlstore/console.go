package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/bulwarkhq/bulwark/internal/store"
)

// Users.

// CreateUser stores a new console user.
func (d *DB) CreateUser(ctx context.Context, u *store.User) error {
	_, err := d.db.ExecContext(ctx, `INSERT INTO users (name, role, pw_hash, created_at, disabled_at, must_change) VALUES ($1,$2,$3,$4,$5,$6)`,
		u.Name, u.Role, u.Hash, ms(u.CreatedAt), msPtr(u.DisabledAt), b2i(u.MustChange))
	if d.dialect.IsUnique(err) {
		return fmt.Errorf("user %s: %w", u.Name, store.ErrExists)
	}
	return err
}

func scanUser(s interface{ Scan(...any) error }) (*store.User, error) {
	var u store.User
	var c int64
	var dis sql.NullInt64
	var mc int
	if err := s.Scan(&u.Name, &u.Role, &u.Hash, &c, &dis, &mc); err != nil {
		return nil, err
	}
	u.CreatedAt, u.DisabledAt, u.MustChange = fromMS(c), fromNull(dis), mc != 0
	return &u, nil
}

const userCols = `name, role, pw_hash, created_at, disabled_at, must_change`

// User returns one user.
func (d *DB) User(ctx context.Context, name string) (*store.User, error) {
	u, err := scanUser(d.db.QueryRowContext(ctx, `SELECT `+userCols+` FROM users WHERE name = $1`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("user %s: %w", name, store.ErrNotFound)
	}
	return u, err
}

// SetUserPassword replaces a user's password hash; mustChange makes the
// user choose a new password at the next sign-in.
func (d *DB) SetUserPassword(ctx context.Context, name, hash string, mustChange bool) error {
	if err := one(d.db.ExecContext(ctx, `UPDATE users SET pw_hash = $2, must_change = $3 WHERE name = $1`, name, hash, b2i(mustChange))); err != nil {
		return fmt.Errorf("user %s: %w", name, err)
	}
	return nil
}

// SetUserAccess sets a user's role and whether it is disabled (disabled
// nil: enabled; a user already disabled keeps its first time). A change
// that would leave no enabled admin user is refused with
// store.ErrLastAdminUser. The first statement locks every enabled admin's row
// (PostgreSQL row locks; SQLite's write lock), so two admins demoting each
// other at once cannot both succeed.
func (d *DB) SetUserAccess(ctx context.Context, name, role string, disabled *time.Time) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `UPDATE users SET role = role WHERE role = $1 AND disabled_at IS NULL`, store.RoleAdmin); err != nil {
		return err
	}
	var cur store.User
	var dis sql.NullInt64
	err = tx.QueryRowContext(ctx, `SELECT role, disabled_at FROM users WHERE name = $1`, name).Scan(&cur.Role, &dis)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("user %s: %w", name, store.ErrNotFound)
	} else if err != nil {
		return err
	}
	if cur.Role == store.RoleAdmin && !dis.Valid && (role != store.RoleAdmin || disabled != nil) {
		var others int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM users WHERE role = $1 AND disabled_at IS NULL AND name <> $2`,
			store.RoleAdmin, name).Scan(&others); err != nil {
			return err
		}
		if others == 0 {
			return fmt.Errorf("user %s: %w", name, store.ErrLastAdminUser)
		}
	}
	var at any
	if disabled != nil {
		at = ms(*disabled)
		if dis.Valid {
			at = dis.Int64
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE users SET role = $2, disabled_at = $3 WHERE name = $1`, name, role, at); err != nil {
		return err
	}
	return tx.Commit()
}

// ListUsers lists users by name.
func (d *DB) ListUsers(ctx context.Context) ([]store.User, error) {
	return queryList(ctx, d.db, scanUser, `SELECT `+userCols+` FROM users ORDER BY name`)
}

// Sessions.

// CreateSession stores a session and drops expired ones.
func (d *DB) CreateSession(ctx context.Context, s *store.Session) error {
	if _, err := d.db.ExecContext(ctx, `DELETE FROM sessions WHERE expires_at <= $1`, ms(s.CreatedAt)); err != nil {
		return err
	}
	_, err := d.db.ExecContext(ctx, `INSERT INTO sessions (hash, subject, role, csrf, created_at, expires_at, seen_at) VALUES ($1,$2,$3,$4,$5,$6,$7)`,
		s.Hash, s.Subject, s.Role, s.CSRF, ms(s.CreatedAt), ms(s.ExpiresAt), ms(s.CreatedAt))
	return err
}

// SessionByHash finds a session that has not expired at now.
func (d *DB) SessionByHash(ctx context.Context, hash string, now time.Time) (*store.Session, error) {
	var s store.Session
	var c, e, seen int64
	err := d.db.QueryRowContext(ctx, `SELECT hash, subject, role, csrf, created_at, expires_at, seen_at FROM sessions WHERE hash = $1 AND expires_at > $2`,
		hash, ms(now)).Scan(&s.Hash, &s.Subject, &s.Role, &s.CSRF, &c, &e, &seen)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	s.CreatedAt, s.ExpiresAt, s.SeenAt = fromMS(c), fromMS(e), fromMS(seen)
	if seen == 0 { // made before seen_at was kept
		s.SeenAt = s.CreatedAt
	}
	return &s, nil
}

// TouchSession records that a session was used at.
func (d *DB) TouchSession(ctx context.Context, hash string, at time.Time) error {
	_, err := d.db.ExecContext(ctx, `UPDATE sessions SET seen_at = $2 WHERE hash = $1 AND seen_at < $2`, hash, ms(at))
	return err
}

// DeleteSessionsOf ends every session of one subject ("user:NAME").
func (d *DB) DeleteSessionsOf(ctx context.Context, subject string) error {
	_, err := d.db.ExecContext(ctx, `DELETE FROM sessions WHERE subject = $1`, subject)
	return err
}

// DeleteSession ends a session.
func (d *DB) DeleteSession(ctx context.Context, hash string) error {
	_, err := d.db.ExecContext(ctx, `DELETE FROM sessions WHERE hash = $1`, hash)
	return err
}

// Audit log.

// AddAudit appends one entry to the audit log.
func (d *DB) AddAudit(ctx context.Context, e *store.AuditEntry) error {
	_, err := d.db.ExecContext(ctx, `INSERT INTO audit (at, actor, via, action, target, detail, remote) VALUES ($1,$2,$3,$4,$5,$6,$7)`,
		ms(e.At), e.Actor, e.Via, e.Action, e.Target, e.Detail, e.Remote)
	return err
}

// ListAudit lists entries newest first, older than the entry before (0:
// from the newest).
func (d *DB) ListAudit(ctx context.Context, before int64, limit int) ([]store.AuditEntry, error) {
	if before <= 0 {
		before = 1 << 62
	}
	return queryList(ctx, d.db, func(s interface{ Scan(...any) error }) (*store.AuditEntry, error) {
		var e store.AuditEntry
		var at int64
		if err := s.Scan(&e.ID, &at, &e.Actor, &e.Via, &e.Action, &e.Target, &e.Detail, &e.Remote); err != nil {
			return nil, err
		}
		e.At = fromMS(at)
		return &e, nil
	}, `SELECT id, at, actor, via, action, target, detail, remote FROM audit WHERE id < $1 ORDER BY id DESC LIMIT $2`, before, limit)
}

// StateEvents lists a computer's reported state changes, newest first.
func (d *DB) StateEvents(ctx context.Context, agentID string, limit int) ([]store.StateEvent, error) {
	return queryList(ctx, d.db, func(s interface{ Scan(...any) error }) (*store.StateEvent, error) {
		var e store.StateEvent
		var at int64
		if err := s.Scan(&e.Vendor, &e.UpdateID, &e.State, &e.Detail, &at); err != nil {
			return nil, err
		}
		e.At = fromMS(at)
		return &e, nil
	}, `SELECT vendor, update_id, state, detail, at FROM state_events WHERE agent_id = $1 ORDER BY id DESC LIMIT $2`, agentID, limit)
}

// Compliance figures.

// missing is an agent_states row that still needs installing.
const missing = `s.state IN ('needed', 'downloaded', 'failed')`

// setCompliance refreshes computers' figures from their states; a WHERE
// clause follows. It reads each computer's states once, found by its id
// (the leading column of agent_states' key), and looks up each state's
// update. Written as five counts each joining updates first, PostgreSQL
// planned them from the updates side with stale statistics (a fleet whose
// states grew after the last ANALYZE): it read every computer's state of
// each update to find one computer's, so a report cost in proportion to
// the fleet (3.9 ms of PostgreSQL CPU per report at 5,000 agents, and
// TestComplianceReadsOneComputersStates).
const setCompliance = `UPDATE agents SET (miss_critical, miss_important, miss_other, failed, pending_reboot) = (SELECT
	COALESCE(SUM(CASE WHEN ` + missing + ` AND u.severity = 'critical' THEN 1 ELSE 0 END), 0),
	COALESCE(SUM(CASE WHEN ` + missing + ` AND u.severity = 'important' THEN 1 ELSE 0 END), 0),
	COALESCE(SUM(CASE WHEN ` + missing + ` AND COALESCE(u.severity, '') NOT IN ('critical', 'important') THEN 1 ELSE 0 END), 0),
	COALESCE(SUM(CASE WHEN s.state = 'failed' THEN 1 ELSE 0 END), 0),
	COALESCE(SUM(CASE WHEN s.state = 'installed-pending-reboot' THEN 1 ELSE 0 END), 0)
	FROM agent_states s LEFT JOIN updates u ON u.vendor = s.vendor AND u.id = s.update_id
	WHERE s.agent_id = agents.id)`

// complianceCols follow an agent's columns in computer rows.
const complianceCols = `, miss_critical, miss_important, miss_other, failed, pending_reboot`

// computerCols are a list row's columns: the inventory (up to 50,000
// packages) is left out.
var computerCols = strings.Replace(agentCols, "inventory", "NULL AS inventory", 1) + complianceCols

// withExtra scans a row into an agent's destinations and then extra ones.
type withExtra struct {
	s     interface{ Scan(...any) error }
	extra []any
}

func (w withExtra) Scan(dest ...any) error { return w.s.Scan(append(dest, w.extra...)...) }

func scanComputer(s interface{ Scan(...any) error }) (*store.Computer, error) {
	var c store.Computer
	var reboot int
	a, err := scanAgent(withExtra{s, []any{&c.MissingCritical, &c.MissingImportant, &c.MissingOther, &c.Failed, &reboot}})
	if err != nil {
		return nil, err
	}
	c.Agent, c.PendingReboot = *a, reboot > 0
	return &c, nil
}

// computerWhere turns a filter into a WHERE clause and its arguments.
func computerWhere(f store.ComputerFilter) (string, []any) {
	var conds []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if f.Search != "" {
		p := arg(f.Search)
		// A hostname prefix; LIKE's wildcards in the search are escaped
		// (with '!': a backslash in a literal differs between dialects).
		esc := strings.NewReplacer(`!`, `!!`, `%`, `!%`, `_`, `!_`).Replace(f.Search)
		conds = append(conds, "(id = "+p+" OR hostname LIKE "+arg(esc+"%")+" ESCAPE '!')")
	}
	if f.Group != "" {
		conds = append(conds, "grp = "+arg(f.Group))
	}
	if f.Status != "" {
		conds = append(conds, "status = "+arg(f.Status))
	}
	switch f.Missing {
	case "critical":
		conds = append(conds, "miss_critical > 0")
	case "important":
		conds = append(conds, "miss_important > 0")
	case "other":
		conds = append(conds, "miss_other > 0")
	case "any":
		conds = append(conds, "(miss_critical > 0 OR miss_important > 0 OR miss_other > 0)")
	case "none":
		conds = append(conds, "miss_critical = 0 AND miss_important = 0 AND miss_other = 0 AND failed = 0")
	}
	if f.Failed {
		conds = append(conds, "failed > 0")
	}
	if f.Reboot {
		conds = append(conds, "pending_reboot > 0")
	}
	if f.OS != "" {
		conds = append(conds, "os = "+arg(f.OS))
	}
	if !f.SeenAfter.IsZero() {
		conds = append(conds, "last_seen >= "+arg(ms(f.SeenAfter)))
	}
	if !f.StaleFrom.IsZero() {
		conds = append(conds, "last_seen < "+arg(ms(f.StaleFrom)))
	}
	if host, id, ok := strings.Cut(f.After, "\x00"); ok {
		h := arg(host)
		conds = append(conds, "(hostname > "+h+" OR (hostname = "+h+" AND id > "+arg(id)+"))")
	}
	if len(conds) == 0 {
		return "", args
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

// ListComputers lists computers matching f by hostname, at most f.Limit
// after the cursor f.After.
func (d *DB) ListComputers(ctx context.Context, f store.ComputerFilter) ([]store.Computer, error) {
	if f.Limit <= 0 || f.Limit > 1000 {
		f.Limit = 1000
	}
	where, args := computerWhere(f)
	args = append(args, f.Limit)
	return queryList(ctx, d.db, scanComputer, `SELECT `+computerCols+` FROM agents`+where+` ORDER BY hostname, id LIMIT $`+strconv.Itoa(len(args)), args...)
}

// CountComputers counts computers matching f (its cursor ignored).
func (d *DB) CountComputers(ctx context.Context, f store.ComputerFilter) (int, error) {
	f.After = ""
	where, args := computerWhere(f)
	var n int
	err := d.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM agents`+where, args...).Scan(&n)
	return n, err
}

// Computer returns one computer with its figures and inventory.
func (d *DB) Computer(ctx context.Context, id string) (*store.Computer, error) {
	c, err := scanComputer(d.db.QueryRowContext(ctx, `SELECT `+agentCols+complianceCols+` FROM agents WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("computer %s: %w", id, store.ErrNotFound)
	}
	return c, err
}

// GroupCompliance counts, per group, the computers in each compliance
// class, read from the counts triggers keep current (migrations 000902-5);
// stale are those last seen on a UTC day before the one staleBefore falls
// in. Every group is listed, empty ones too.
func (d *DB) GroupCompliance(ctx context.Context, staleBefore time.Time) ([]store.GroupCompliance, error) {
	return queryList(ctx, d.db, func(s interface{ Scan(...any) error }) (*store.GroupCompliance, error) {
		var g store.GroupCompliance
		err := s.Scan(&g.Group, &g.Computers, &g.MissingCritical, &g.MissingImportant, &g.MissingOther, &g.Failed, &g.PendingReboot, &g.Stale, &g.Compliant)
		return &g, err
	}, `SELECT g.name, COALESCE(c.computers, 0), COALESCE(c.critical, 0), COALESCE(c.important, 0), COALESCE(c.other, 0),
			COALESCE(c.failed, 0), COALESCE(c.reboot, 0), COALESCE(s.n, 0), COALESCE(c.compliant, 0)
		FROM groups g
		LEFT JOIN group_compliance c ON c.grp = g.name
		LEFT JOIN (SELECT grp, SUM(n) AS n FROM group_seen WHERE day < $1 GROUP BY grp) s ON s.grp = g.name
		ORDER BY g.name`, ms(staleBefore)/86400000)
}

// GroupStateCounts counts the computers of one group ("" for all) in each
// state for one update.
func (d *DB) GroupStateCounts(ctx context.Context, group, vendor, id string) (map[string]int, error) {
	return countBy(ctx, d.db, `SELECT s.state, COUNT(*) FROM agent_states s JOIN agents a ON a.id = s.agent_id
		WHERE s.vendor = $1 AND s.update_id = $2 AND ($3 = '' OR a.grp = $3) GROUP BY s.state`, vendor, id, group)
}

// countBy runs a query of (key, count) rows into a map.
func countBy(ctx context.Context, db *sql.DB, q string, args ...any) (map[string]int, error) {
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var k string
		var n int
		if err := rows.Scan(&k, &n); err != nil {
			return nil, err
		}
		out[k] = n
	}
	return out, rows.Err()
}

// RenameGroup renames a group with its approvals, computers and enrollment
// tokens, all or nothing.
func (d *DB) RenameGroup(ctx context.Context, from, to string) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var created int64
	if err := tx.QueryRowContext(ctx, `SELECT created_at FROM groups WHERE name = $1`, from).Scan(&created); errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("group %s: %w", from, store.ErrNotFound)
	} else if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO groups (name, created_at) VALUES ($1, $2)`, to, created); d.dialect.IsUnique(err) {
		return fmt.Errorf("group %s: %w", to, store.ErrExists)
	} else if err != nil {
		return err
	}
	for _, q := range []string{
		`UPDATE approvals SET grp = $2 WHERE grp = $1`,
		`UPDATE agents SET grp = $2 WHERE grp = $1`,
		`UPDATE tokens SET grp = $2 WHERE grp = $1 AND kind = 'enroll'`,
		`UPDATE group_policies SET grp = $2 WHERE grp = $1`,
		`UPDATE approval_rules SET grp = $2 WHERE grp = $1`,
		`UPDATE approval_rules SET after_grp = $2 WHERE after_grp = $1`,
		`UPDATE rollout_thresholds SET grp = $2 WHERE grp = $1`,
	} {
		if _, err := tx.ExecContext(ctx, q, from, to); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM groups WHERE name = $1`, from); err != nil {
		return err
	}
	return tx.Commit()
}
