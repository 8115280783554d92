package storetest

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/server"
	"github.com/bulwarkhq/bulwark/internal/store"
)

// testLockdown: a computer's audit arrives with a report and replaces the
// previous one (rules too); an older audit delivered late changes nothing;
// a group sums its computers' audits and ranks the failing rules; removing
// a computer removes its audit.
func testLockdown(t *testing.T, s server.Store) {
	ctx := context.Background()
	must(t, s.CreateGroup(ctx, "web", t0))
	must(t, s.CreateGroup(ctx, "db", t0))
	for _, a := range []*store.Agent{agent("a1", "m1", "web"), agent("a2", "m2", "web"), agent("a3", "m3", "web"), agent("a4", "m4", "db")} {
		must(t, s.CreateAgent(ctx, a))
	}
	_, err := s.AgentLockdown(ctx, "a1")
	wantErr(t, err, store.ErrNotFound)
	applied := t0.Add(-time.Hour)
	sshRule := store.LockdownRule{ID: "ssh-root-login", Title: "No root over SSH", Severity: "high", Result: "fail", Drift: true,
		CIS: []string{"5.1.20"}, SSG: []string{"sshd_disable_root_login"}}
	umask := store.LockdownRule{ID: "login-umask", Title: "umask", Severity: "medium", Result: "waived", CIS: []string{"5.4.3.3"},
		Waiver: "build farm", WaivedUntil: "2027-03-31"}
	rep := func(agent, batch string, at time.Time, score float64, rules ...store.LockdownRule) *store.Report {
		l := &store.LockdownStatus{Profile: "sysadmin", Source: "policy", Score: score, Pass: 100, NotApplicable: 5,
			AuditedAt: at, AppliedAt: &applied, ReceivedAt: at.Add(time.Second), Rules: rules}
		for _, r := range rules {
			switch r.Result {
			case "fail":
				l.Fail++
			case "waived":
				l.Waived++
			}
			if r.Drift {
				l.Drift++
			}
		}
		return &store.Report{AgentID: agent, BatchID: batch, ReceivedAt: at, Lockdown: l}
	}
	_, err = s.ApplyReport(ctx, rep("a1", "b1", t0, 97.5, sshRule, umask))
	must(t, err)
	got, err := s.AgentLockdown(ctx, "a1")
	must(t, err)
	if got.Profile != "sysadmin" || got.Source != "policy" || got.Score != 97.5 || got.Fail != 1 || got.Waived != 1 || got.Drift != 1 ||
		got.Pass != 100 || got.NotApplicable != 5 || got.Group != "web" || got.Hostname != "host-a1" ||
		!got.AuditedAt.Equal(t0) || got.AppliedAt == nil || !got.AppliedAt.Equal(applied) {
		t.Fatalf("audit = %+v", got)
	}
	// Failing first (high severity first), waived last.
	if !reflect.DeepEqual(got.Rules, []store.LockdownRule{sshRule, umask}) {
		t.Fatalf("rules = %+v", got.Rules)
	}
	// A later audit replaces the rules; an older one delivered late
	// (a retry) does not bring them back.
	_, err = s.ApplyReport(ctx, rep("a1", "b2", t0.Add(time.Hour), 100))
	must(t, err)
	_, err = s.ApplyReport(ctx, rep("a1", "b0", t0.Add(-time.Hour), 50, sshRule))
	must(t, err)
	got, err = s.AgentLockdown(ctx, "a1")
	must(t, err)
	if got.Score != 100 || len(got.Rules) != 0 || got.Fail != 0 {
		t.Fatalf("after a later and an older audit: %+v", got)
	}
	// The group: a1 compliant, a2 failing with drift, a3 failing the same
	// rule, a4 in another group.
	other := store.LockdownRule{ID: "kernel-dmesg-restrict", Title: "dmesg", Severity: "low", Result: "fail"}
	_, err = s.ApplyReport(ctx, rep("a2", "b1", t0, 80, sshRule, other))
	must(t, err)
	plain := sshRule
	plain.Drift = false
	_, err = s.ApplyReport(ctx, rep("a3", "b1", t0, 90.1, plain, umask))
	must(t, err)
	_, err = s.ApplyReport(ctx, rep("a4", "b1", t0, 10, sshRule))
	must(t, err)
	g, err := s.GroupLockdown(ctx, "web", 10, 10)
	must(t, err)
	if g.Computers != 3 || g.Reporting != 3 || g.Compliant != 1 || g.Drifted != 1 || g.MinScore != 80 || g.AvgScore != 90 {
		t.Fatalf("group = %+v", g)
	}
	if len(g.Rules) != 3 || g.Rules[0].ID != "ssh-root-login" || g.Rules[0].Computers != 2 || !g.Rules[0].Drift ||
		!reflect.DeepEqual(g.Rules[0].SSG, []string{"sshd_disable_root_login"}) ||
		g.Rules[1].ID != "kernel-dmesg-restrict" || g.Rules[2].ID != "login-umask" || g.Rules[2].Result != "waived" {
		t.Fatalf("group rules = %+v", g.Rules)
	}
	if len(g.Members) != 3 || g.Members[0].AgentID != "a2" || g.Members[2].AgentID != "a1" || g.Members[0].Rules != nil {
		t.Fatalf("group members = %+v", g.Members)
	}
	if g, err = s.GroupLockdown(ctx, "web", 1, 1); err != nil || len(g.Rules) != 1 || len(g.Members) != 1 {
		t.Fatalf("limited group view: %v %+v", err, g)
	}
	_, err = s.GroupLockdown(ctx, "nope", 10, 10)
	wantErr(t, err, store.ErrNotFound)
	_, err = s.GroupLockdown(ctx, "default-empty", 10, 10)
	wantErr(t, err, store.ErrNotFound)
	must(t, s.CreateGroup(ctx, "empty", t0))
	if g, err = s.GroupLockdown(ctx, "empty", 10, 10); err != nil || g.Reporting != 0 || g.AvgScore != 0 || len(g.Rules) != 0 || len(g.Members) != 0 {
		t.Fatalf("empty group: %v %+v", err, g)
	}
	// Moving a computer moves its audit to the new group's view.
	must(t, s.MoveAgents(ctx, []string{"a2"}, "db"))
	if g, err = s.GroupLockdown(ctx, "db", 10, 10); err != nil || g.Reporting != 2 || g.Drifted != 2 {
		t.Fatalf("after a move: %v %+v", err, g)
	}
	must(t, s.DeleteAgent(ctx, "a2"))
	_, err = s.AgentLockdown(ctx, "a2")
	wantErr(t, err, store.ErrNotFound)
	if g, err = s.GroupLockdown(ctx, "db", 10, 10); err != nil || g.Reporting != 1 || len(g.Rules) != 1 {
		t.Fatalf("after removing a computer: %v %+v", err, g)
	}
}
