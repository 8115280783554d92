package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/bulwarkhq/bulwark/internal/store"
)

// Group policies.

// SetGroupPolicy stores a group's central policy; an empty policy removes
// it. An unknown group is store.ErrNotFound.
func (d *DB) SetGroupPolicy(ctx context.Context, p *store.GroupPolicy) error {
	if p.Policy.Empty() {
		if _, err := d.GroupPolicy(ctx, p.Group); err != nil {
			return err
		}
		_, err := d.db.ExecContext(ctx, `DELETE FROM group_policies WHERE grp = $1`, p.Group)
		return err
	}
	b, err := json.Marshal(p.Policy)
	if err != nil {
		return err
	}
	_, err = d.db.ExecContext(ctx, `INSERT INTO group_policies (grp, policy, updated_by, updated_at) VALUES ($1,$2,$3,$4)
		ON CONFLICT (grp) DO UPDATE SET policy = excluded.policy, updated_by = excluded.updated_by, updated_at = excluded.updated_at`,
		p.Group, string(b), p.UpdatedBy, ms(p.UpdatedAt))
	if d.dialect.IsForeignKey(err) {
		return fmt.Errorf("group %s: %w", p.Group, store.ErrNotFound)
	}
	return err
}

// GroupPolicy returns a group's central policy (an empty one when none is
// set); an unknown group is store.ErrNotFound.
func (d *DB) GroupPolicy(ctx context.Context, group string) (*store.GroupPolicy, error) {
	var name string
	var pol, by sql.NullString
	var at sql.NullInt64
	err := d.db.QueryRowContext(ctx, `SELECT g.name, p.policy, p.updated_by, p.updated_at FROM groups g
		LEFT JOIN group_policies p ON p.grp = g.name WHERE g.name = $1`, group).Scan(&name, &pol, &by, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("group %s: %w", group, store.ErrNotFound)
	} else if err != nil {
		return nil, err
	}
	gp := &store.GroupPolicy{Group: name, UpdatedBy: by.String}
	if at.Valid {
		gp.UpdatedAt = fromMS(at.Int64)
	}
	if pol.Valid {
		if err := json.Unmarshal([]byte(pol.String), &gp.Policy); err != nil {
			return nil, fmt.Errorf("group %s: stored policy: %w", group, err)
		}
	}
	return gp, nil
}

// ListGroupPolicies lists every group's policy that sets anything, by
// group.
func (d *DB) ListGroupPolicies(ctx context.Context) ([]store.GroupPolicy, error) {
	return queryList(ctx, d.db, func(s interface{ Scan(...any) error }) (*store.GroupPolicy, error) {
		var gp store.GroupPolicy
		var pol string
		var at int64
		if err := s.Scan(&gp.Group, &pol, &gp.UpdatedBy, &at); err != nil {
			return nil, err
		}
		gp.UpdatedAt = fromMS(at)
		if err := json.Unmarshal([]byte(pol), &gp.Policy); err != nil {
			return nil, fmt.Errorf("group %s: stored policy: %w", gp.Group, err)
		}
		return &gp, nil
	}, `SELECT grp, policy, updated_by, updated_at FROM group_policies ORDER BY grp`)
}
