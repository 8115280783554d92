package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/bulwarkhq/bulwark/internal/store"
)

// Approval rules, rollout halts and halt thresholds.

// CreateRule stores an approval rule; an unknown group is
// store.ErrNotFound, a used id store.ErrExists.
func (d *DB) CreateRule(ctx context.Context, r *store.ApprovalRule) error {
	_, err := d.db.ExecContext(ctx, `INSERT INTO approval_rules (id, grp, vendor, product, classification, min_severity, after_grp, delay_ms, deadline_ms, rollout, created_by, created_at)
		VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12)`,
		r.ID, r.Group, r.Vendor, r.Product, r.Classification, r.MinSeverity, r.After, r.Delay.Milliseconds(), r.DeadlineIn.Milliseconds(), r.Rollout, r.CreatedBy, ms(r.CreatedAt))
	switch {
	case d.dialect.IsForeignKey(err):
		return fmt.Errorf("group %s: %w", r.Group, store.ErrNotFound)
	case d.dialect.IsUnique(err):
		return fmt.Errorf("rule %s: %w", r.ID, store.ErrExists)
	}
	return err
}

// ListRules lists approval rules by group, then creation.
func (d *DB) ListRules(ctx context.Context) ([]store.ApprovalRule, error) {
	return queryList(ctx, d.db, func(s interface{ Scan(...any) error }) (*store.ApprovalRule, error) {
		var r store.ApprovalRule
		var delay, deadline, at int64
		if err := s.Scan(&r.ID, &r.Group, &r.Vendor, &r.Product, &r.Classification, &r.MinSeverity, &r.After, &delay, &deadline, &r.Rollout, &r.CreatedBy, &at); err != nil {
			return nil, err
		}
		r.Delay, r.DeadlineIn, r.CreatedAt = time.Duration(delay)*time.Millisecond, time.Duration(deadline)*time.Millisecond, fromMS(at)
		return &r, nil
	}, `SELECT id, grp, vendor, product, classification, min_severity, after_grp, delay_ms, deadline_ms, rollout, created_by, created_at
		FROM approval_rules ORDER BY grp, created_at, id`)
}

// DeleteRule removes an approval rule.
func (d *DB) DeleteRule(ctx context.Context, id string) error {
	if err := one(d.db.ExecContext(ctx, `DELETE FROM approval_rules WHERE id = $1`, id)); err != nil {
		return fmt.Errorf("rule %s: %w", id, err)
	}
	return nil
}

// RolloutStats counts, for every install approval, the installed and
// failed results among the computers of its group; for a resumed rollout,
// only those reported after the resume.
func (d *DB) RolloutStats(ctx context.Context) ([]store.RolloutStats, error) {
	return queryList(ctx, d.db, func(s interface{ Scan(...any) error }) (*store.RolloutStats, error) {
		var r store.RolloutStats
		var at int64
		var inst, failed sql.NullInt64
		if err := s.Scan(&r.Group, &r.Vendor, &r.UpdateID, &r.Rollout, &at, &r.ApprovedBy, &inst, &failed); err != nil {
			return nil, err
		}
		r.ApprovedAt, r.Installed, r.Failed = fromMS(at), int(inst.Int64), int(failed.Int64)
		return &r, nil
	}, `SELECT ap.grp, ap.vendor, ap.update_id, ap.rollout, ap.updated_at, ap.by_token,
			SUM(CASE WHEN s.state IN ('installed', 'installed-pending-reboot') THEN 1 ELSE 0 END),
			SUM(CASE WHEN s.state = 'failed' THEN 1 ELSE 0 END)
		FROM approvals ap
		LEFT JOIN rollout_halts h ON h.grp = ap.grp AND h.vendor = ap.vendor AND h.update_id = ap.update_id
		LEFT JOIN agent_states s ON s.vendor = ap.vendor AND s.update_id = ap.update_id
			AND s.agent_id IN (SELECT a.id FROM agents a WHERE a.grp = ap.grp)
			AND (h.halted IS NULL OR h.halted = 1 OR s.updated_at > h.changed_at)
		WHERE ap.action = 'install'
		GROUP BY ap.grp, ap.vendor, ap.update_id, ap.rollout, ap.updated_at, ap.by_token
		ORDER BY ap.grp, ap.vendor, ap.update_id`)
}

// SetRolloutHalt records a rollout halted or resumed; an approval that does
// not exist (or is not an install) is store.ErrNotFound.
func (d *DB) SetRolloutHalt(ctx context.Context, h *store.RolloutHalt) error {
	halted := 0
	if h.Halted {
		halted = 1
	}
	err := one(d.db.ExecContext(ctx, `INSERT INTO rollout_halts (grp, vendor, update_id, halted, reason, failed, results, changed_by, changed_at)
		SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9 FROM approvals WHERE grp = $1 AND vendor = $2 AND update_id = $3 AND action = 'install'
		ON CONFLICT (grp, vendor, update_id) DO UPDATE SET halted = excluded.halted, reason = excluded.reason, failed = excluded.failed,
			results = excluded.results, changed_by = excluded.changed_by, changed_at = excluded.changed_at`,
		h.Group, h.Vendor, h.UpdateID, halted, h.Reason, h.Failed, h.Results, h.ChangedBy, ms(h.ChangedAt)))
	if err != nil {
		return fmt.Errorf("install approval of %s/%s in %s: %w", h.Vendor, h.UpdateID, h.Group, err)
	}
	return nil
}

// RolloutHalts lists every rollout that halted (and those resumed since).
func (d *DB) RolloutHalts(ctx context.Context) ([]store.RolloutHalt, error) {
	return queryList(ctx, d.db, func(s interface{ Scan(...any) error }) (*store.RolloutHalt, error) {
		var h store.RolloutHalt
		var halted int
		var at int64
		if err := s.Scan(&h.Group, &h.Vendor, &h.UpdateID, &halted, &h.Reason, &h.Failed, &h.Results, &h.ChangedBy, &at); err != nil {
			return nil, err
		}
		h.Halted, h.ChangedAt = halted == 1, fromMS(at)
		return &h, nil
	}, `SELECT grp, vendor, update_id, halted, reason, failed, results, changed_by, changed_at
		FROM rollout_halts ORDER BY grp, vendor, update_id`)
}

// SetHaltThreshold stores a group's halt threshold; an unknown group is
// store.ErrNotFound.
func (d *DB) SetHaltThreshold(ctx context.Context, t store.HaltThreshold) error {
	_, err := d.db.ExecContext(ctx, `INSERT INTO rollout_thresholds (grp, failed_percent, min_results) VALUES ($1,$2,$3)
		ON CONFLICT (grp) DO UPDATE SET failed_percent = excluded.failed_percent, min_results = excluded.min_results`,
		t.Group, t.FailedPercent, t.MinResults)
	if d.dialect.IsForeignKey(err) {
		return fmt.Errorf("group %s: %w", t.Group, store.ErrNotFound)
	}
	return err
}

// HaltThresholds lists the groups' own halt thresholds.
func (d *DB) HaltThresholds(ctx context.Context) ([]store.HaltThreshold, error) {
	return queryList(ctx, d.db, func(s interface{ Scan(...any) error }) (*store.HaltThreshold, error) {
		var t store.HaltThreshold
		return &t, s.Scan(&t.Group, &t.FailedPercent, &t.MinResults)
	}, `SELECT grp, failed_percent, min_results FROM rollout_thresholds ORDER BY grp`)
}

// FailedComputers lists up to limit computers of a group whose install of
// an update failed, most recent first, with the reason they reported.
func (d *DB) FailedComputers(ctx context.Context, group, vendor, id string, limit int) ([]store.FailedComputer, error) {
	return queryList(ctx, d.db, func(s interface{ Scan(...any) error }) (*store.FailedComputer, error) {
		var c store.FailedComputer
		var at int64
		if err := s.Scan(&c.ID, &c.Hostname, &c.Reason, &at); err != nil {
			return nil, err
		}
		c.At = fromMS(at)
		return &c, nil
	}, `SELECT a.id, a.hostname, s.detail, s.updated_at FROM agent_states s JOIN agents a ON a.id = s.agent_id
		WHERE a.grp = $1 AND s.vendor = $2 AND s.update_id = $3 AND s.state = 'failed'
		ORDER BY s.updated_at DESC, a.id LIMIT $4`, group, vendor, id, limit)
}
