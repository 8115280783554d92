package agent

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/lockdown"
	"github.com/bulwarkhq/bulwark/internal/lockdown/audit"
	"github.com/bulwarkhq/bulwark/internal/wire"
)

func writeTree(t testing.TB, root string, files map[string]string) {
	t.Helper()
	for p, c := range files {
		hp := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(hp), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(hp, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func readTree(t testing.TB, root, p string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, p))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func ruleOf(c *wire.LockdownAudit, id string) *wire.LockdownAuditRule {
	for i := range c.Rules {
		if c.Rules[i].ID == id {
			return &c.Rules[i]
		}
	}
	return nil
}

// A group's policy keeps a profile applied: the first cycle applies it
// (the waived rule left alone and shown as waived), an admin's later edit
// is reported as drift and not overwritten, an install that brings a
// service (sshd_config appears) gets that service's rules applied at the
// next cycle, and removing the waiver applies the whole profile again.
func TestLockdownPolicyKeepsProfileApplied(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	writeTree(t, root, map[string]string{"etc/login.defs": "PASS_MAX_DAYS 90\nUMASK 022\nPASS_MIN_DAYS 1\nENCRYPT_METHOD SHA512\n"})
	now := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	a, err := Open(Config{StateDir: filepath.Join(t.TempDir(), "state"), Root: root, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	waiver, err := lockdown.ParseWaiver("login-umask", "build farm needs 022 until March", "2027-03-31")
	if err != nil {
		t.Fatal(err)
	}
	set := LockdownSetting{Profile: "small-business", Source: LockdownFromPolicy, Apply: true, Waivers: []lockdown.Waiver{waiver}}

	c, err := a.Lockdown(ctx, set)
	if err != nil || c.Error != "" {
		t.Fatalf("first cycle: %v %+v", err, c)
	}
	if err := audit.Validate(c, now); err != nil {
		t.Fatalf("the agent's own compliance does not validate: %v", err)
	}
	if c.AppliedAt == nil || c.Drift != 0 || c.Waived != 1 || c.Source != "policy" {
		t.Fatalf("first cycle: applied %v drift %d waived %d", c.AppliedAt, c.Drift, c.Waived)
	}
	if r := ruleOf(c, "login-umask"); r == nil || r.Result != "waived" || r.Waiver == "" || r.WaivedUntil != "2027-03-31" {
		t.Fatalf("waived rule reported as %+v", r)
	}
	defs := readTree(t, root, "etc/login.defs")
	if !strings.Contains(defs, "UMASK 022") {
		t.Fatalf("the waived rule was applied: %q", defs)
	}
	if _, err := os.Stat(filepath.Join(root, "etc/sysctl.d")); err != nil {
		t.Fatalf("the profile was not applied: %v", err)
	}
	if c.Fail != 0 {
		t.Fatalf("after apply %d rules still fail: %+v", c.Fail, c.Rules)
	}

	// An admin edits a setting the apply made: drift, reported, kept.
	writeTree(t, root, map[string]string{"etc/login.defs": strings.Replace(defs, "PASS_MAX_DAYS 90", "PASS_MAX_DAYS 99999", 1)})
	// An install brings the SSH server: its rules come into scope.
	writeTree(t, root, map[string]string{"etc/ssh/sshd_config": "X11Forwarding yes\n"})
	now = now.Add(22 * time.Hour)
	c, err = a.Lockdown(ctx, set)
	if err != nil || c.Error != "" {
		t.Fatalf("second cycle: %v %+v", err, c)
	}
	if r := ruleOf(c, "login-pass-max-days"); r == nil || !r.Drift || r.Result != "fail" || c.Drift != 1 {
		t.Fatalf("drift not reported: %+v (drift %d)", r, c.Drift)
	}
	if got := readTree(t, root, "etc/login.defs"); !strings.Contains(got, "PASS_MAX_DAYS 99999") || !strings.Contains(got, "UMASK 022") {
		t.Fatalf("the second cycle overwrote the drifted or waived setting: %q", got)
	}
	sshd := readTree(t, root, "etc/ssh/sshd_config")
	if !strings.Contains(sshd, "PermitRootLogin no") {
		t.Fatalf("the rules the install brought into scope were not applied: %q", sshd)
	}
	for _, r := range c.Rules {
		if strings.HasPrefix(r.ID, "ssh") {
			t.Fatalf("an sshd rule still fails after the scope apply: %+v", r)
		}
	}
	if err := audit.Validate(c, now); err != nil {
		t.Fatal(err)
	}

	// A cycle with nothing new applies nothing.
	before := readTree(t, root, "etc/login.defs") + readTree(t, root, "etc/ssh/sshd_config")
	if c, err = a.Lockdown(ctx, set); err != nil || c.Drift != 1 {
		t.Fatalf("third cycle: %v drift %d", err, c.Drift)
	}
	if after := readTree(t, root, "etc/login.defs") + readTree(t, root, "etc/ssh/sshd_config"); after != before {
		t.Fatalf("a cycle with nothing new changed files:\n%s\n---\n%s", before, after)
	}

	// The site withdraws the waiver: the whole profile is applied again.
	set.Waivers = nil
	if c, err = a.Lockdown(ctx, set); err != nil || c.Error != "" {
		t.Fatalf("fourth cycle: %v %+v", err, c)
	}
	if got := readTree(t, root, "etc/login.defs"); !strings.Contains(got, "\nUMASK 027\n") || !strings.Contains(got, "\nPASS_MAX_DAYS 365\n") {
		t.Fatalf("withdrawn waiver: login.defs %q", got)
	}
	if c.Fail != 0 || c.Waived != 0 || c.Drift != 0 {
		t.Fatalf("fourth cycle: fail %d waived %d drift %d", c.Fail, c.Waived, c.Drift)
	}
}

// Audit only (agent.yaml's lockdown_profile): nothing is written to the
// root; a rule that passed at the previous audit and fails now is drift.
func TestLockdownConfigAuditsOnly(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	defs := "PASS_MAX_DAYS 90\nUMASK 022\n"
	writeTree(t, root, map[string]string{"etc/login.defs": defs})
	a, err := Open(Config{StateDir: filepath.Join(t.TempDir(), "state"), Root: root})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	set, ok := LockdownSettingFor(nil, "small-business", a.cfg.StateDir)
	if !ok || set.Apply || set.Source != LockdownFromConfig {
		t.Fatalf("setting = %+v %v", set, ok)
	}
	c, err := a.Lockdown(ctx, set)
	if err != nil || c.Error != "" || c.AppliedAt != nil || c.Fail == 0 || c.Drift != 0 {
		t.Fatalf("audit: %v %+v", err, c)
	}
	if got := readTree(t, root, "etc/login.defs"); got != defs {
		t.Fatalf("an audit-only cycle changed login.defs: %q", got)
	}
	if _, err := os.Stat(filepath.Join(root, "etc/sysctl.d")); err == nil {
		t.Fatal("an audit-only cycle wrote etc/sysctl.d")
	}
	writeTree(t, root, map[string]string{"etc/login.defs": "PASS_MAX_DAYS 99999\nUMASK 022\n"})
	c, err = a.Lockdown(ctx, set)
	if err != nil || c.Drift != 1 || ruleOf(c, "login-pass-max-days") == nil || !ruleOf(c, "login-pass-max-days").Drift {
		t.Fatalf("drift since the last audit: %v %+v", err, c)
	}
	// An unknown profile or a waiver of a rule the profile lacks is the
	// report's error, naming it.
	c, err = a.Lockdown(ctx, LockdownSetting{Profile: "no-such-profile", Source: LockdownFromConfig})
	if err != nil || !strings.Contains(c.Error, "no-such-profile") || audit.Validate(c, time.Now()) != nil {
		t.Fatalf("unknown profile: %v %+v", err, c)
	}
	w, _ := lockdown.ParseWaiver("nginx-server-tokens", "not ours", "2027-01-01")
	c, err = a.Lockdown(ctx, LockdownSetting{Profile: "small-business", Source: LockdownFromPolicy, Apply: true, Waivers: []lockdown.Waiver{w}})
	if err != nil || !strings.Contains(c.Error, "nginx-server-tokens") {
		t.Fatalf("waiver of a rule outside the profile: %v %+v", err, c)
	}
	if got := readTree(t, root, "etc/login.defs"); !strings.Contains(got, "99999") {
		t.Fatal("a policy with a bad waiver applied the profile anyway")
	}
}

// Each check-in audits agent.yaml's profile and the report carries it; an
// audit the server did not take (it was down) goes with the next report.
func TestDaemonReportsLockdown(t *testing.T) {
	w := newWorld(t)
	root := t.TempDir()
	writeTree(t, root, map[string]string{"etc/login.defs": "PASS_MAX_DAYS 90\nUMASK 022\n"})
	a, err := Open(Config{StateDir: filepath.Join(t.TempDir(), "state"), Root: root, Now: w.clock, Policy: Policy{Mode: ModeDownload},
		Handlers: func(string) (Handler, error) { return &reader{got: map[string]string{}}, nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	rep := &memReporter{got: map[int64]Event{}, fail: true}
	d := &Daemon{Agent: a, Sources: w.sources(t.TempDir()), Reporter: rep, Options: CycleOptions{AgentID: "agent-1", Facts: debian12},
		LockdownProfile: "small-business"}
	if err := d.CheckIn(context.Background()); err == nil {
		t.Fatal("check-in with the server down reported no error")
	}
	if d.pendingLockdown == nil {
		t.Fatal("the audit the server did not take was dropped")
	}
	rep.fail = false
	if err := d.CheckIn(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(rep.lockdown) != 1 {
		t.Fatalf("%d audits delivered, want 1", len(rep.lockdown))
	}
	c := rep.lockdown[0]
	if c.Profile != "small-business" || c.Source != LockdownFromConfig || c.Fail == 0 || ruleOf(c, "login-umask") == nil {
		t.Fatalf("delivered audit = %+v", c)
	}
	if err := audit.Validate(c, w.clock()); err != nil {
		t.Fatal(err)
	}
}
