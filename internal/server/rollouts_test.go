package server

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/wire"
)

// TestRulesRingsAndHalts: critical updates go to canary at once by a rule
// and to prod by a ring rule only after they soaked in canary and
// installed there; a rollout whose failures pass its group's threshold
// halts itself (out of the signed approvals, audited, listed with the
// failing computers and their reasons); resume puts it back, and failures
// from before the resume do not halt it again.
func TestRulesRingsAndHalts(t *testing.T) {
	ctx := context.Background()
	v := newVendorRepo(t, "example")
	v.publish(t, "BW-1", "critical", map[string]string{"a.txt": "a"})
	v.publish(t, "BW-2", "low", map[string]string{"b.txt": "b"})
	ts := startServer(t, Config{Vendors: []HostedVendor{{Name: "example", Dir: v.dir}}})
	if _, err := ts.SyncAll(ctx, "", "manual"); err != nil {
		t.Fatal(err)
	}
	for _, g := range []string{"canary", "prod"} {
		ts.admin("POST", "/api/v1/groups", GroupRequest{Name: g}, http.StatusCreated)
	}
	tok := ts.newToken(TokenRequest{Kind: "enroll", Group: "canary", MaxUses: 3})
	var canary []*testAgent
	for _, m := range []string{"11111111111111111111111111111111", "22222222222222222222222222222222", "33333333333333333333333333333333"} {
		canary = append(canary, ts.enroll(tok, m, ""))
	}
	report := func(a *testAgent, batch, state, reason string) {
		t.Helper()
		code, b, _ := ts.agentDo(a, a.client, "POST", "/agent/v1/report", wire.ReportRequest{BatchID: batch,
			Changes: []wire.StateChange{{Key: "example/BW-1", State: state, Reason: reason, Time: time.Now().UTC()}}}, nil)
		if code != http.StatusOK {
			t.Fatalf("report: %d %s", code, b)
		}
	}
	evaluate := func() *RolloutActions {
		t.Helper()
		act, err := ts.EvaluateRollouts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return act
	}

	// Bad rules are refused, naming what is wrong.
	for body, want := range map[string]string{
		`{"group":"prod","min_severity":"urgent"}`:         "min_severity",
		`{"group":"prod","after":"prod"}`:                  "after names the rule's own group",
		`{"group":"prod","after":"nope"}`:                  "after group nope not found",
		`{"group":"prod","delay":"soon"}`:                  "use a duration such as 3d",
		`{"group":"nope"}`:                                 "group nope not found",
		`{"group":"prod","rollout":101}`:                   "rollout 101",
		`{"group":"prod","classification":"security-ish"}`: "classification",
	} {
		code, b, _ := ts.do(ts.client, "POST", "/api/v1/rules", ts.first.AdminToken, json.RawMessage(body))
		if code != http.StatusBadRequest && code != http.StatusNotFound || !strings.Contains(string(b), want) {
			t.Errorf("rule %s: %d %s, want %q", body, code, b, want)
		}
	}
	ts.admin("POST", "/api/v1/rules", RuleRequest{Group: "canary", Product: "debian-12", Classification: "security", MinSeverity: "critical"}, http.StatusCreated)
	var ring RuleView
	json.Unmarshal(ts.admin("POST", "/api/v1/rules", RuleRequest{Group: "prod", MinSeverity: "critical", After: "canary", Delay: "1h", DeadlineIn: "2d", Rollout: 50}, http.StatusCreated), &ring)

	act := evaluate()
	if strings.Join(act.Approved, ",") != "canary:example/BW-1" {
		t.Fatalf("first evaluation approved %v, want only BW-1 for canary", act.Approved)
	}
	if !signed(t, ts, "canary", "BW-1") {
		t.Fatal("the rule's approval is not in canary's signed approvals")
	}
	// Not yet in prod: nothing installed in canary, and it has not soaked.
	report(canary[0], "c0-1", "installed", "")
	if act := evaluate(); len(act.Approved) != 0 {
		t.Fatalf("prod approved before the soak time: %v", act.Approved)
	}
	// An hour later (the canary approval made an hour ago), prod gets it
	// with the ring's deadline and rollout.
	aps, _ := ts.st.Approvals(ctx, "canary")
	past := aps[0]
	past.UpdatedAt = past.UpdatedAt.Add(-61 * time.Minute)
	if err := ts.st.SetApproval(ctx, &past); err != nil {
		t.Fatal(err)
	}
	if act := evaluate(); strings.Join(act.Approved, ",") != "prod:example/BW-1" {
		t.Fatalf("after the soak: approved %v, want prod:example/BW-1", act.Approved)
	}
	aps, _ = ts.st.Approvals(ctx, "prod")
	if len(aps) != 1 || aps[0].Rollout != 50 || aps[0].Deadline == nil || aps[0].By != "rule:"+ring.ID || time.Until(*aps[0].Deadline) < 47*time.Hour {
		t.Fatalf("prod approval %+v", aps)
	}

	// Two of three canary results fail: over 20% of at least 3, it halts.
	report(canary[1], "c1-1", "failed", "dpkg: error processing package libfoo")
	if act := evaluate(); len(act.Halted) != 0 {
		t.Fatalf("halted at 1 of 2 results (fewer than 3): %v", act.Halted)
	}
	report(canary[2], "c2-1", "failed", "dpkg: disk full")
	if act := evaluate(); strings.Join(act.Halted, ",") != "canary:example/BW-1" {
		t.Fatalf("halted %v, want canary:example/BW-1", act.Halted)
	}
	if signed(t, ts, "canary", "BW-1") {
		t.Fatal("a halted rollout is still in the group's signed approvals")
	}
	var ro struct{ Rollouts []Rollout }
	json.Unmarshal(ts.admin("GET", "/api/v1/rollouts?state=halted", nil, http.StatusOK), &ro)
	if len(ro.Rollouts) != 1 || !ro.Rollouts[0].Halted || !strings.Contains(ro.Rollouts[0].Reason, "2 of 3 results failed") || len(ro.Rollouts[0].Failing) != 2 {
		t.Fatalf("halted rollouts %+v", ro.Rollouts)
	}
	reasons := ro.Rollouts[0].Failing[0].Reason + "|" + ro.Rollouts[0].Failing[1].Reason
	if !strings.Contains(reasons, "disk full") || !strings.Contains(reasons, "error processing package") {
		t.Fatalf("failing computers' reasons %q", reasons)
	}
	ts.admin("GET", "/api/v1/rollouts?state=broken", nil, http.StatusBadRequest)
	es, _ := ts.st.ListAudit(ctx, 0, 50)
	var audited bool
	for _, e := range es {
		audited = audited || (e.Action == "rollout.halt" && e.Target == "canary:example/BW-1" && e.Actor == "server")
	}
	if !audited {
		t.Fatalf("the halt is not in the audit log: %+v", es)
	}

	// Resume: back in the signed approvals; the old failures do not halt
	// it again, and the ring's condition no longer counts a halted canary.
	ts.admin("POST", "/api/v1/rollouts/canary/example/BW-1/resume", nil, http.StatusNoContent)
	ts.admin("POST", "/api/v1/rollouts/canary/example/BW-1/resume", nil, http.StatusNoContent) // running: nothing to do
	ts.admin("POST", "/api/v1/rollouts/canary/example/BW-9/resume", nil, http.StatusNotFound)
	if !signed(t, ts, "canary", "BW-1") {
		t.Fatal("a resumed rollout is not back in the group's signed approvals")
	}
	if act := evaluate(); len(act.Halted) != 0 {
		t.Fatalf("halted again by failures from before the resume: %v", act.Halted)
	}

	// A group's own threshold.
	ts.admin("PUT", "/api/v1/groups/canary/halt-threshold", ThresholdRequest{FailedPercent: 101, MinResults: 1}, http.StatusBadRequest)
	ts.admin("PUT", "/api/v1/groups/nope/halt-threshold", ThresholdRequest{FailedPercent: 50, MinResults: 1}, http.StatusNotFound)
	ts.admin("PUT", "/api/v1/groups/canary/halt-threshold", ThresholdRequest{FailedPercent: 0, MinResults: 1}, http.StatusOK)
	report(canary[0], "c0-2", "failed", "postinst failed")
	if act := evaluate(); strings.Join(act.Halted, ",") != "canary:example/BW-1" {
		t.Fatalf("with a 0%% threshold the first new failure should halt: %v", act.Halted)
	}
	// A rule never overrides a decline an admin made.
	ts.admin("PUT", "/api/v1/groups/prod/approvals/example/BW-2", ApprovalRequest{Action: "decline"}, http.StatusOK)
	ts.admin("POST", "/api/v1/rules", RuleRequest{Group: "prod"}, http.StatusCreated)
	evaluate()
	aps, _ = ts.st.Approvals(ctx, "prod")
	for _, a := range aps {
		if a.UpdateID == "BW-2" && a.Action != "decline" {
			t.Fatalf("a rule overrode the admin's decline: %+v", a)
		}
	}
}

// signed reports whether the group's signed approvals name the update.
func signed(t *testing.T, ts *testServer, group, id string) bool {
	t.Helper()
	for _, a := range siteApprovals(t, ts, group).Updates {
		if a.ID == id {
			return true
		}
	}
	return false
}
