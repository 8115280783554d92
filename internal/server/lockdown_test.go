package server

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/policy"
	"github.com/bulwarkhq/bulwark/internal/store"
	"github.com/bulwarkhq/bulwark/internal/wire"
)

// testCompliance is an audit as an agent reports it: one failing rule
// that drifted, one waived.
func testCompliance(now time.Time) *wire.LockdownAudit {
	applied := now.Add(-time.Hour).UTC().Truncate(time.Millisecond)
	return &wire.LockdownAudit{Profile: "sysadmin", Source: "policy", AuditedAt: now.UTC().Truncate(time.Millisecond), AppliedAt: &applied,
		Score: 97.3, Pass: 180, Fail: 1, Waived: 1, NotApplicable: 8, Drift: 1,
		Rules: []wire.LockdownAuditRule{
			{ID: "ssh-permit-root-login", Title: "Root cannot log in over SSH", Severity: "high", Result: "fail", Drift: true,
				CIS: []string{"5.1.20"}, SSG: []string{"sshd_disable_root_login"}},
			{ID: "login-umask", Title: "New files are not readable by everyone", Severity: "medium", Result: "waived",
				CIS: []string{"5.4.3.3"}, Waiver: "build farm needs 022", WaivedUntil: "2027-03-31"},
		}}
}

// An agent's audit arrives with its report and shows per computer and per
// group; a report whose audit does not validate is refused whole (its
// state changes are not stored either) with the field named.
func TestReportLockdown(t *testing.T) {
	ctx := context.Background()
	ts := startServer(t, Config{})
	admin := ts.first.AdminToken
	if code, b, _ := ts.do(ts.client, "POST", "/api/v1/groups", admin, GroupRequest{Name: "web"}); code != 201 {
		t.Fatalf("create group: %d %s", code, b)
	}
	a := ts.enroll(ts.newToken(TokenRequest{Kind: "enroll", Group: "web"}), machineA, "")
	now := time.Now()
	bad := testCompliance(now)
	bad.Rules[0].Title = "line\nbreak"
	code, b, _ := ts.agentDo(a, a.client, "POST", "/agent/v1/report", wire.ReportRequest{BatchID: "b1", Lockdown: bad,
		Changes: []wire.StateChange{{Key: "example/BW-1", State: "needed", Time: now.UTC()}}}, nil)
	if code != 400 || !strings.Contains(string(b), "lockdown.rules[0].title") {
		t.Fatalf("bad audit: %d %s", code, b)
	}
	if _, err := ts.st.AgentLockdown(ctx, a.resp.AgentID); err == nil {
		t.Fatal("a refused report's audit was stored")
	}
	for _, tc := range []struct {
		name string
		mod  func(c *wire.LockdownAudit)
		want string
	}{
		{"score over 100", func(c *wire.LockdownAudit) { c.Score = 100.5 }, "lockdown.score"},
		{"rules do not add up", func(c *wire.LockdownAudit) { c.Fail = 5 }, "list every rule that is not passing"},
		{"drift on a waived rule", func(c *wire.LockdownAudit) { c.Rules[1].Drift = true; c.Drift = 2 }, "a waived rule is not drift"},
		{"unknown source", func(c *wire.LockdownAudit) { c.Source = "rumour" }, "lockdown.source"},
		{"future audit", func(c *wire.LockdownAudit) { c.AuditedAt = now.Add(48 * time.Hour) }, "lockdown.audited_at"},
		{"reference with spaces", func(c *wire.LockdownAudit) { c.Rules[0].SSG = []string{"a b"} }, "reference"},
		{"waived without reason", func(c *wire.LockdownAudit) { c.Rules[1].Waiver = "" }, "waiver's reason"},
	} {
		c := testCompliance(now)
		tc.mod(c)
		code, b, _ := ts.agentDo(a, a.client, "POST", "/agent/v1/report", wire.ReportRequest{BatchID: "b-" + strings.ReplaceAll(tc.name, " ", "-"), Lockdown: c}, nil)
		if code != 400 || !strings.Contains(string(b), tc.want) {
			t.Errorf("%s: %d %s, want 400 naming %q", tc.name, code, b, tc.want)
		}
	}

	good := testCompliance(now)
	if code, b, _ := ts.agentDo(a, a.client, "POST", "/agent/v1/report", wire.ReportRequest{BatchID: "b2", Lockdown: good}, nil); code != 200 {
		t.Fatalf("report: %d %s", code, b)
	}
	code, b, _ = ts.do(ts.client, "GET", "/api/v1/computers/"+a.resp.AgentID+"/lockdown", admin, nil)
	var st store.LockdownStatus
	if code != 200 || json.Unmarshal(b, &st) != nil {
		t.Fatalf("computer lockdown: %d %s", code, b)
	}
	if st.Profile != "sysadmin" || st.Score != 97.3 || st.Fail != 1 || st.Waived != 1 || st.Drift != 1 || len(st.Rules) != 2 ||
		st.Rules[0].SSG[0] != "sshd_disable_root_login" || !st.Rules[0].Drift || st.Rules[1].Waiver != "build farm needs 022" ||
		!st.AuditedAt.Equal(good.AuditedAt) || st.Group != "web" {
		t.Fatalf("computer lockdown = %s", b)
	}
	code, b, _ = ts.do(ts.client, "GET", "/api/v1/groups/web/lockdown", admin, nil)
	var g store.GroupLockdown
	if code != 200 || json.Unmarshal(b, &g) != nil || g.Reporting != 1 || g.Compliant != 0 || g.Drifted != 1 || len(g.Rules) != 2 || g.Rules[0].Computers != 1 {
		t.Fatalf("group lockdown: %d %s", code, b)
	}
	b2 := newBrowser(t, ts)
	b2.signIn("admin", ts.first.AdminPassword)
	_, page, _ := b2.get("/console/computers/" + a.resp.AgentID)
	for _, want := range []string{"Profile <strong>sysadmin</strong>", "<strong>1 drifted</strong>", "<code>sshd_disable_root_login</code>", "build farm needs 022 (until 2027-03-31)"} {
		if !strings.Contains(page, want) {
			t.Fatalf("computer page lacks %q:\n%s", want, page)
		}
	}
	_, page, _ = b2.get("/console/groups/web/lockdown")
	if !strings.Contains(page, "<strong>0</strong> compliant") || !strings.Contains(page, "<code>ssh-permit-root-login</code>") {
		t.Fatalf("group page:\n%s", page)
	}
	if code, _, _ := b2.get("/console/groups/nope/lockdown"); code != 404 {
		t.Fatalf("unknown group's page: %d", code)
	}
}

// An enrolled agent is not trusted with the console: a rule title with
// markup it reports is shown as text, never run.
func TestAttackLockdownReportInjectsMarkup(t *testing.T) {
	ts := startServer(t, Config{})
	a := ts.enroll(ts.newToken(TokenRequest{Kind: "enroll"}), machineA, "")
	c := testCompliance(time.Now())
	c.Rules[0].Title = `<script>alert(1)</script><img src=x onerror=alert(2)>`
	if code, b, _ := ts.agentDo(a, a.client, "POST", "/agent/v1/report", wire.ReportRequest{BatchID: "b1", Lockdown: c}, nil); code != 200 {
		t.Fatalf("report: %d %s", code, b)
	}
	b := newBrowser(t, ts)
	b.signIn("admin", ts.first.AdminPassword)
	for _, path := range []string{"/console/computers/" + a.resp.AgentID, "/console/groups/" + DefaultGroup + "/lockdown"} {
		_, page, _ := b.get(path)
		if strings.Contains(page, "<script>alert") || strings.Contains(page, "<img src=x") || !strings.Contains(page, "&lt;script&gt;alert(1)") {
			t.Fatalf("%s shows the agent's markup unescaped:\n%s", path, page)
		}
	}
}

// The console's policy page sets the group's lockdown profile and keeps
// the waivers the API set; saving the form without a profile removes it.
func TestConsoleGroupPolicyLockdown(t *testing.T) {
	ctx := context.Background()
	ts := startServer(t, Config{})
	pol := policy.Group{Mode: "auto", Lockdown: &policy.Lockdown{Profile: "sysadmin", Waivers: []policy.Waiver{{Rule: "login-umask", Reason: "build farm", Expires: "2099-01-01"}}}}
	if code, b, _ := ts.do(ts.client, "PUT", "/api/v1/groups/"+DefaultGroup+"/policy", ts.first.AdminToken, pol); code != 200 {
		t.Fatalf("put policy: %d %s", code, b)
	}
	b := newBrowser(t, ts)
	b.signIn("admin", ts.first.AdminPassword)
	_, page, _ := b.get("/console/groups/" + DefaultGroup + "/policy")
	if !strings.Contains(page, "<option selected>sysadmin</option>") || !strings.Contains(page, "<code>login-umask</code>") {
		t.Fatalf("policy page:\n%s", page)
	}
	if code, body, _ := b.post("/console/groups/"+DefaultGroup+"/policy", url.Values{"mode": {"auto"}, "lockdown_profile": {"small-business"}}, nil); code != 200 && code != 303 {
		t.Fatalf("save: %d %s", code, body)
	}
	gp, err := ts.st.GroupPolicy(ctx, DefaultGroup)
	if err != nil {
		t.Fatal(err)
	}
	if l := gp.Policy.Lockdown; l == nil || l.Profile != "small-business" || len(l.Waivers) != 1 || l.Waivers[0].Rule != "login-umask" {
		t.Fatalf("after saving the form: %+v", gp.Policy.Lockdown)
	}
	b.post("/console/groups/"+DefaultGroup+"/policy", url.Values{"mode": {"auto"}}, nil)
	if gp, _ = ts.st.GroupPolicy(ctx, DefaultGroup); gp.Policy.Lockdown != nil {
		t.Fatalf("saving without a profile kept %+v", gp.Policy.Lockdown)
	}
}
