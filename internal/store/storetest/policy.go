package storetest

import (
	"context"
	"reflect"
	"testing"

	"github.com/bulwarkhq/bulwark/internal/policy"
	"github.com/bulwarkhq/bulwark/internal/server"
	"github.com/bulwarkhq/bulwark/internal/store"
)

// testGroupPolicies: a group's policy is stored whole, replaced, cleared,
// follows a rename and goes with a deleted group.
func testGroupPolicies(t *testing.T, s server.Store) {
	ctx := context.Background()
	must(t, s.CreateGroup(ctx, "web", t0))
	must(t, s.CreateGroup(ctx, "db", t0))
	gp, err := s.GroupPolicy(ctx, "web")
	must(t, err)
	if !gp.Policy.Empty() || !gp.UpdatedAt.IsZero() {
		t.Fatalf("a new group has policy %+v", gp)
	}
	_, err = s.GroupPolicy(ctx, "nope")
	wantErr(t, err, store.ErrNotFound)
	wantErr(t, s.SetGroupPolicy(ctx, &store.GroupPolicy{Group: "nope", Policy: policy.Group{Mode: "auto"}, UpdatedAt: t0}), store.ErrNotFound)
	wantErr(t, s.SetGroupPolicy(ctx, &store.GroupPolicy{Group: "nope", UpdatedAt: t0}), store.ErrNotFound)

	want := policy.Group{Mode: "scheduled", MaintenanceWindow: "sat 02:00-04:00", DetectionInterval: "4h", AllowLocal: []string{"bandwidth_limit"}}
	must(t, s.SetGroupPolicy(ctx, &store.GroupPolicy{Group: "web", Policy: want, UpdatedBy: "user:alice", UpdatedAt: t0}))
	gp, err = s.GroupPolicy(ctx, "web")
	must(t, err)
	if !reflect.DeepEqual(gp.Policy, want) || gp.UpdatedBy != "user:alice" || !gp.UpdatedAt.Equal(t0) {
		t.Fatalf("GroupPolicy = %+v, want %+v by alice at %v", gp, want, t0)
	}
	// Replaced whole: a setting left out is unset.
	must(t, s.SetGroupPolicy(ctx, &store.GroupPolicy{Group: "web", Policy: policy.Group{Mode: "auto"}, UpdatedBy: "token:t1", UpdatedAt: t0.Add(1)}))
	must(t, s.SetGroupPolicy(ctx, &store.GroupPolicy{Group: "db", Policy: policy.Group{BandwidthLimit: "2mbit"}, UpdatedAt: t0}))
	ps, err := s.ListGroupPolicies(ctx)
	must(t, err)
	if len(ps) != 2 || ps[0].Group != "db" || ps[1].Group != "web" || !reflect.DeepEqual(ps[1].Policy, policy.Group{Mode: "auto"}) || ps[1].UpdatedBy != "token:t1" {
		t.Fatalf("ListGroupPolicies = %+v", ps)
	}
	// It follows a rename.
	must(t, s.RenameGroup(ctx, "web", "www"))
	gp, err = s.GroupPolicy(ctx, "www")
	must(t, err)
	if gp.Policy.Mode != "auto" {
		t.Fatalf("renamed group's policy = %+v", gp)
	}
	// Cleared by an empty policy.
	must(t, s.SetGroupPolicy(ctx, &store.GroupPolicy{Group: "www", UpdatedAt: t0}))
	gp, err = s.GroupPolicy(ctx, "www")
	must(t, err)
	if !gp.Policy.Empty() {
		t.Fatalf("cleared policy = %+v", gp)
	}
	// A deleted group takes its policy along; a new group of that name
	// starts without one.
	must(t, s.DeleteGroup(ctx, "db", "www"))
	must(t, s.CreateGroup(ctx, "db", t0))
	gp, err = s.GroupPolicy(ctx, "db")
	must(t, err)
	ps, err = s.ListGroupPolicies(ctx)
	must(t, err)
	if !gp.Policy.Empty() || len(ps) != 0 {
		t.Fatalf("re-created group inherited a policy: %+v, list %+v", gp, ps)
	}
}
