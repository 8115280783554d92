package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/bulwarkhq/bulwark/internal/store"
)

// setLockdown records a computer's audit in a report's transaction, unless
// a later audit is already stored (a retried old batch changes nothing).
func setLockdown(ctx context.Context, tx *sql.Tx, agentID string, l *store.LockdownStatus) error {
	var applied any
	if l.AppliedAt != nil {
		applied = ms(*l.AppliedAt)
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO agent_lockdown (agent_id, profile, source, score_tenths, pass, fail, waived, errors,
			notapplicable, drift, error, audited_at, applied_at, received_at)
		VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14)
		ON CONFLICT (agent_id) DO UPDATE SET profile = excluded.profile, source = excluded.source, score_tenths = excluded.score_tenths,
			pass = excluded.pass, fail = excluded.fail, waived = excluded.waived, errors = excluded.errors,
			notapplicable = excluded.notapplicable, drift = excluded.drift, error = excluded.error, audited_at = excluded.audited_at,
			applied_at = excluded.applied_at, received_at = excluded.received_at
		WHERE excluded.audited_at >= agent_lockdown.audited_at`,
		agentID, l.Profile, l.Source, int(math.Round(l.Score*10)), l.Pass, l.Fail, l.Waived, l.Errors, l.NotApplicable, l.Drift, l.Error,
		ms(l.AuditedAt), applied, ms(l.ReceivedAt))
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM agent_lockdown_rules WHERE agent_id = $1`, agentID); err != nil {
		return err
	}
	if len(l.Rules) == 0 {
		return nil
	}
	ins, err := tx.PrepareContext(ctx, `INSERT INTO agent_lockdown_rules (agent_id, rule_id, title, severity, result, drift, cis, ssg, waiver, waived_until)
		VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)`)
	if err != nil {
		return err
	}
	defer ins.Close()
	for _, r := range l.Rules {
		if _, err := ins.ExecContext(ctx, agentID, r.ID, r.Title, r.Severity, r.Result, b2i(r.Drift),
			strings.Join(r.CIS, " "), strings.Join(r.SSG, " "), r.Waiver, r.WaivedUntil); err != nil {
			return err
		}
	}
	return nil
}

const lockdownCols = `l.agent_id, a.hostname, a.grp, l.profile, l.source, l.score_tenths, l.pass, l.fail, l.waived, l.errors,
	l.notapplicable, l.drift, l.error, l.audited_at, l.applied_at, l.received_at`

func scanLockdown(s interface{ Scan(...any) error }) (*store.LockdownStatus, error) {
	var l store.LockdownStatus
	var score int
	var audited, received int64
	var applied sql.NullInt64
	if err := s.Scan(&l.AgentID, &l.Hostname, &l.Group, &l.Profile, &l.Source, &score, &l.Pass, &l.Fail, &l.Waived, &l.Errors,
		&l.NotApplicable, &l.Drift, &l.Error, &audited, &applied, &received); err != nil {
		return nil, err
	}
	l.Score, l.AuditedAt, l.AppliedAt, l.ReceivedAt = float64(score)/10, fromMS(audited), fromNull(applied), fromMS(received)
	return &l, nil
}

func scanLockdownRule(s interface{ Scan(...any) error }) (*store.LockdownRule, error) {
	var r store.LockdownRule
	var drift int
	var cis, ssg string
	if err := s.Scan(&r.ID, &r.Title, &r.Severity, &r.Result, &drift, &cis, &ssg, &r.Waiver, &r.WaivedUntil, &r.Computers); err != nil {
		return nil, err
	}
	r.Drift, r.CIS, r.SSG = drift != 0, refs(cis), refs(ssg)
	return &r, nil
}

// refs splits a stored reference list; none is nil, as the agent sent it.
func refs(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Fields(s)
}

// AgentLockdown is a computer's last reported audit with its rules that
// are not passing; store.ErrNotFound when it never reported one.
func (d *DB) AgentLockdown(ctx context.Context, id string) (*store.LockdownStatus, error) {
	l, err := scanLockdown(d.db.QueryRowContext(ctx, `SELECT `+lockdownCols+` FROM agent_lockdown l JOIN agents a ON a.id = l.agent_id
		WHERE l.agent_id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("lockdown audit of computer %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	l.Rules, err = queryList(ctx, d.db, scanLockdownRule, `SELECT rule_id, title, severity, result, drift, cis, ssg, waiver, waived_until, 0
		FROM agent_lockdown_rules WHERE agent_id = $1
		ORDER BY CASE result WHEN 'waived' THEN 1 ELSE 0 END, CASE severity WHEN 'high' THEN 0 WHEN 'medium' THEN 1 ELSE 2 END, rule_id`, id)
	return l, err
}

// GroupLockdown sums a group's reported audits: counts, scores, the rules
// not passing on most of its computers (at most maxRules) and its
// reporting computers, lowest score first (at most maxMembers).
func (d *DB) GroupLockdown(ctx context.Context, group string, maxRules, maxMembers int) (*store.GroupLockdown, error) {
	g := &store.GroupLockdown{Group: group}
	err := d.db.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM agents WHERE grp = g.name) FROM groups g WHERE g.name = $1`, group).Scan(&g.Computers)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("group %s: %w", group, store.ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	var sum, low sql.NullInt64
	var compliant, drifted sql.NullInt64
	if err := d.db.QueryRowContext(ctx, `SELECT COUNT(*), SUM(CASE WHEN l.fail + l.errors = 0 AND l.error = '' THEN 1 ELSE 0 END),
			SUM(CASE WHEN l.drift > 0 THEN 1 ELSE 0 END), SUM(l.score_tenths), MIN(l.score_tenths)
		FROM agent_lockdown l JOIN agents a ON a.id = l.agent_id WHERE a.grp = $1`, group).Scan(&g.Reporting, &compliant, &drifted, &sum, &low); err != nil {
		return nil, err
	}
	g.Compliant, g.Drifted = int(compliant.Int64), int(drifted.Int64)
	if g.Reporting > 0 {
		g.AvgScore = math.Round(float64(sum.Int64)/float64(g.Reporting)) / 10
		g.MinScore = float64(low.Int64) / 10
	}
	if g.Rules, err = queryList(ctx, d.db, scanLockdownRule, `SELECT r.rule_id, MAX(r.title), MAX(r.severity), r.result, MAX(r.drift),
			MAX(r.cis), MAX(r.ssg), '', '', COUNT(*)
		FROM agent_lockdown_rules r JOIN agents a ON a.id = r.agent_id WHERE a.grp = $1
		GROUP BY r.rule_id, r.result ORDER BY CASE r.result WHEN 'waived' THEN 1 ELSE 0 END, COUNT(*) DESC, r.rule_id LIMIT $2`, group, maxRules); err != nil {
		return nil, err
	}
	g.Members, err = queryList(ctx, d.db, scanLockdown, `SELECT `+lockdownCols+` FROM agent_lockdown l JOIN agents a ON a.id = l.agent_id
		WHERE a.grp = $1 ORDER BY l.score_tenths, a.hostname, l.agent_id LIMIT $2`, group, maxMembers)
	return g, err
}
