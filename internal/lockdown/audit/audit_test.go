package audit

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/lockdown"
	"github.com/bulwarkhq/bulwark/internal/wire"
)

var now = time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)

// Of counts waived rules apart, lists every rule that is not passing with
// its references, and marks drift only against the rules that passed
// after the last apply; what it produces validates.
func TestOf(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	if err := os.WriteFile(filepath.Join(root, "etc/login.defs"), []byte("PASS_MAX_DAYS 99999\nUMASK 022\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cat, err := lockdown.LoadCatalog()
	if err != nil {
		t.Fatal(err)
	}
	sel, err := cat.Select("small-business", now)
	if err != nil {
		t.Fatal(err)
	}
	w, err := lockdown.ParseWaiver("login-umask", "build farm", "2027-01-31")
	if err != nil {
		t.Fatal(err)
	}
	if err := sel.Waive([]lockdown.Waiver{w}, now); err != nil {
		t.Fatal(err)
	}
	rep, err := lockdown.NewEngine(slog.New(slog.DiscardHandler), func() time.Time { return now }, lockdown.ExecCommander{}).Audit(context.Background(), sel, root)
	if err != nil {
		t.Fatal(err)
	}
	got := Of(rep, "policy", nil, map[string]bool{"login-pass-max-days": true, "login-umask": true})
	if got.Waived != 1 || got.Drift != 1 || got.Fail != rep.Counts[lockdown.ResultFail] || got.Score != rep.Score {
		t.Fatalf("audit = %+v (counts %v)", got, rep.Counts)
	}
	byID := map[string]wire.LockdownAuditRule{}
	for _, r := range got.Rules {
		byID[r.ID] = r
	}
	if r := byID["login-umask"]; r.Result != "waived" || r.Drift || r.Waiver != "build farm" || r.CIS[0] != "5.4.3.3" {
		t.Fatalf("waived rule = %+v", r)
	}
	if r := byID["login-pass-max-days"]; r.Result != "fail" || !r.Drift || len(r.SSG) == 0 {
		t.Fatalf("drifted rule = %+v", r)
	}
	if err := Validate(got, now); err != nil {
		t.Fatal(err)
	}
	if err := sel.Waive([]lockdown.Waiver{{Rule: "nginx-server-tokens", Reason: "x", Expires: "2027-01-01"}}, now); err == nil {
		t.Fatal("a waiver of a rule outside the profile was accepted")
	}
	if _, err := lockdown.ParseWaiver("login-umask", "", "2027-01-01"); err == nil {
		t.Fatal("a waiver without a reason was accepted")
	}
}

// TestEveryRuleHasReferences: every built-in rule cites what an auditor
// checks it against (CIS Debian 12, SSG, or for nginx the CIS NGINX
// Benchmark), each reference in the form agents report.
func TestEveryRuleHasReferences(t *testing.T) {
	cat, err := lockdown.LoadCatalog()
	if err != nil {
		t.Fatal(err)
	}
	if len(cat.Rules()) < 100 {
		t.Fatalf("only %d built-in rules", len(cat.Rules()))
	}
	for _, r := range cat.Rules() {
		refs := append(append(append(append([]string{}, r.References.CIS...), r.References.SSG...), r.References.CISNginx...), r.References.Lynis...)
		if len(refs) == 0 {
			t.Errorf("rule %s (%s) has no CIS, SSG or Lynis reference", r.ID, r.Source)
		}
		for _, ref := range refs {
			if !refPattern().MatchString(ref) {
				t.Errorf("rule %s: reference %q is not letters, digits and ._:-", r.ID, ref)
			}
		}
	}
}

// FuzzValidate: the server decodes and validates what an agent reports;
// nothing panics, and what validates still validates after a round trip.
func FuzzValidate(f *testing.F) {
	f.Add([]byte(`{"profile":"sysadmin","source":"policy","audited_at":"2026-11-30T08:00:00Z","score":97.5,"pass":10,"fail":1,"waived":1,"errors":0,"notapplicable":3,"drift":1,
		"rules":[{"id":"ssh-permit-root-login","title":"Root cannot log in","severity":"high","result":"fail","drift":true,"cis":["5.1.20"],"ssg":["sshd_disable_root_login"]},
		{"id":"login-umask","title":"umask","severity":"medium","result":"waived","waiver":"build farm","waived_until":"2027-03-31"}]}`))
	f.Add([]byte(`{"profile":"x","source":"config","audited_at":"2026-11-30T08:00:00Z","score":100,"rules":[],"error":"unknown profile \"x\""}`))
	f.Add([]byte(`{"profile":"sysadmin","source":"update","audited_at":"2026-11-30T08:00:00Z","score":-1,"rules":null}`))
	f.Add([]byte(`{"rules":[{"id":"a","title":"t","severity":"high","result":"pass"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var c wire.LockdownAudit
		if json.Unmarshal(b, &c) != nil {
			return
		}
		if Validate(&c, now) != nil {
			return
		}
		out, err := json.Marshal(&c)
		if err != nil {
			t.Fatal(err)
		}
		var again wire.LockdownAudit
		if err := json.Unmarshal(out, &again); err != nil {
			t.Fatal(err)
		}
		if err := Validate(&again, now); err != nil {
			t.Fatalf("valid audit fails after a round trip: %v\n%s", err, out)
		}
	})
}
