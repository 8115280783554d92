package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/server"
	"github.com/bulwarkhq/bulwark/internal/store"
)

// testRollouts: approval rules, per-approval result counts in the group,
// halts that go with their approval, thresholds, failing computers, and a
// group rename that carries all of them.
func testRollouts(t *testing.T, s server.Store) {
	ctx := context.Background()
	must(t, s.CreateGroup(ctx, "canary", t0))
	must(t, s.CreateGroup(ctx, "prod", t0))
	r := &store.ApprovalRule{ID: "rule-1", Group: "prod", Product: "debian-12", MinSeverity: "critical", After: "canary", Delay: 72 * time.Hour,
		DeadlineIn: 24 * time.Hour, Rollout: 50, CreatedBy: "user:alice", CreatedAt: t0}
	must(t, s.CreateRule(ctx, r))
	wantErr(t, s.CreateRule(ctx, r), store.ErrExists)
	wantErr(t, s.CreateRule(ctx, &store.ApprovalRule{ID: "rule-2", Group: "nope", Rollout: 100, CreatedAt: t0}), store.ErrNotFound)
	rs, err := s.ListRules(ctx)
	must(t, err)
	if len(rs) != 1 || rs[0] != *r {
		t.Fatalf("ListRules = %+v, want %+v", rs, *r)
	}

	// Three computers in canary, one in prod: canary's counts are its own.
	for i, g := range []string{"canary", "canary", "canary", "prod"} {
		must(t, s.CreateAgent(ctx, agent("a"+string(rune('1'+i)), "m"+string(rune('1'+i)), g)))
	}
	for _, g := range []string{"canary", "prod"} {
		must(t, s.SetApproval(ctx, &store.Approval{Group: g, Vendor: "v", UpdateID: "u", Action: "install", Rollout: 100, By: "tok-1", UpdatedAt: t0}))
	}
	must(t, s.SetApproval(ctx, &store.Approval{Group: "canary", Vendor: "v", UpdateID: "d", Action: "decline", UpdatedAt: t0}))
	for id, st := range map[string]string{"a1": "installed", "a2": "failed", "a3": "installed-pending-reboot", "a4": "failed"} {
		_, err := s.ApplyReport(ctx, &store.Report{AgentID: id, BatchID: id + "-1", ReceivedAt: t0,
			Changes: []store.UpdateState{{Vendor: "v", UpdateID: "u", State: st, Detail: "dpkg: " + id, UpdatedAt: t0}}})
		must(t, err)
	}
	stats, err := s.RolloutStats(ctx)
	must(t, err)
	if len(stats) != 2 || stats[0].Group != "canary" || stats[0].Installed != 2 || stats[0].Failed != 1 || stats[0].ApprovedBy != "tok-1" ||
		!stats[0].ApprovedAt.Equal(t0) || stats[1].Group != "prod" || stats[1].Installed != 0 || stats[1].Failed != 1 {
		t.Fatalf("RolloutStats = %+v", stats)
	}
	fc, err := s.FailedComputers(ctx, "canary", "v", "u", 10)
	must(t, err)
	if len(fc) != 1 || fc[0].ID != "a2" || fc[0].Reason != "dpkg: a2" {
		t.Fatalf("FailedComputers = %+v", fc)
	}

	h := &store.RolloutHalt{Group: "canary", Vendor: "v", UpdateID: "u", Halted: true, Reason: "1 of 3 failed", Failed: 1, Results: 3, ChangedBy: "server", ChangedAt: t0}
	must(t, s.SetRolloutHalt(ctx, h))
	wantErr(t, s.SetRolloutHalt(ctx, &store.RolloutHalt{Group: "canary", Vendor: "v", UpdateID: "d", Halted: true, ChangedAt: t0}), store.ErrNotFound)
	wantErr(t, s.SetRolloutHalt(ctx, &store.RolloutHalt{Group: "canary", Vendor: "v", UpdateID: "none", Halted: true, ChangedAt: t0}), store.ErrNotFound)
	h.Halted, h.ChangedBy, h.ChangedAt = false, "user:bob", t0.Add(time.Minute)
	must(t, s.SetRolloutHalt(ctx, h))
	hs, err := s.RolloutHalts(ctx)
	must(t, err)
	if len(hs) != 1 || hs[0] != *h {
		t.Fatalf("RolloutHalts = %+v, want %+v", hs, *h)
	}
	// Resumed: only results reported after the resume count.
	stats, err = s.RolloutStats(ctx)
	must(t, err)
	if stats[0].Installed != 0 || stats[0].Failed != 0 || stats[1].Failed != 1 {
		t.Fatalf("RolloutStats after the resume = %+v, want canary's old results not counted", stats)
	}
	_, err = s.ApplyReport(ctx, &store.Report{AgentID: "a1", BatchID: "a1-2", ReceivedAt: t0.Add(2 * time.Minute),
		Changes: []store.UpdateState{{Vendor: "v", UpdateID: "u", State: "failed", Detail: "again", UpdatedAt: t0.Add(2 * time.Minute)}}})
	must(t, err)
	stats, err = s.RolloutStats(ctx)
	must(t, err)
	if stats[0].Failed != 1 || stats[0].Installed != 0 {
		t.Fatalf("RolloutStats with a failure after the resume = %+v", stats)
	}

	must(t, s.SetHaltThreshold(ctx, store.HaltThreshold{Group: "canary", FailedPercent: 10, MinResults: 5}))
	must(t, s.SetHaltThreshold(ctx, store.HaltThreshold{Group: "canary", FailedPercent: 15, MinResults: 2}))
	wantErr(t, s.SetHaltThreshold(ctx, store.HaltThreshold{Group: "nope", FailedPercent: 15, MinResults: 2}), store.ErrNotFound)

	// A rename carries rules (as group and as ring), halts and thresholds.
	must(t, s.RenameGroup(ctx, "canary", "pilot"))
	rs, _ = s.ListRules(ctx)
	hs, _ = s.RolloutHalts(ctx)
	ts, err := s.HaltThresholds(ctx)
	must(t, err)
	if len(rs) != 1 || rs[0].After != "pilot" || len(hs) != 1 || hs[0].Group != "pilot" || len(ts) != 1 || ts[0] != (store.HaltThreshold{Group: "pilot", FailedPercent: 15, MinResults: 2}) {
		t.Fatalf("after rename: rules %+v, halts %+v, thresholds %+v", rs, hs, ts)
	}
	// Removing the approval removes its halt; deleting a rule removes it.
	must(t, s.DeleteApproval(ctx, "pilot", "v", "u"))
	hs, _ = s.RolloutHalts(ctx)
	if len(hs) != 0 {
		t.Fatalf("halt outlived its approval: %+v", hs)
	}
	must(t, s.DeleteRule(ctx, "rule-1"))
	wantErr(t, s.DeleteRule(ctx, "rule-1"), store.ErrNotFound)
}
