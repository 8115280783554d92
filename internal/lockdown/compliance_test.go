package lockdown

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/wire"
)

// ComplianceOf counts waived rules apart, lists every rule that is not
// passing with its references, and marks drift only against the rules
// that passed after the last apply; what it produces validates.
func TestComplianceOf(t *testing.T) {
	root := miniRoot(t, map[string]string{"/etc/login.defs": "PASS_MAX_DAYS 99999\nUMASK 022\n"})
	c := testCatalog(t)
	sel := selectProfile(t, c, "small-business")
	w, err := ParseWaiver("login-umask", "build farm", "2027-01-31")
	if err != nil {
		t.Fatal(err)
	}
	if err := sel.Waive([]Waiver{w}, fixedNow); err != nil {
		t.Fatal(err)
	}
	rep, err := testEngine(t).Audit(context.Background(), sel, root)
	if err != nil {
		t.Fatal(err)
	}
	got := ComplianceOf(rep, "policy", nil, map[string]bool{"login-pass-max-days": true, "login-umask": true})
	if got.Waived != 1 || got.Drift != 1 || got.Fail != rep.Counts[ResultFail] || got.Score != rep.Score {
		t.Fatalf("compliance = %+v (counts %v)", got, rep.Counts)
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
	if err := ValidateAudit(got, fixedNow); err != nil {
		t.Fatal(err)
	}
	if err := sel.Waive([]Waiver{{Rule: "nginx-server-tokens", Reason: "x", Expires: "2027-01-01"}}, fixedNow); err == nil {
		t.Fatal("a waiver of a rule outside the profile was accepted")
	}
	if _, err := ParseWaiver("login-umask", "", "2027-01-01"); err == nil {
		t.Fatal("a waiver without a reason was accepted")
	}
}

// FuzzCompliance: the server decodes and validates what an agent reports;
// nothing panics, and what validates still validates after a round trip.
func FuzzCompliance(f *testing.F) {
	now := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
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
		if ValidateAudit(&c, now) != nil {
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
		if err := ValidateAudit(&again, now); err != nil {
			t.Fatalf("valid compliance fails after a round trip: %v\n%s", err, out)
		}
	})
}
