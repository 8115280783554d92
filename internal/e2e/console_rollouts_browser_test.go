package e2e

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/bulwarkhq/bulwark/internal/debtest"
	"github.com/bulwarkhq/bulwark/internal/tuf"
)

// TestConsoleRolloutsInBrowser: an admin sets a group's halt threshold and
// makes an approval rule in a real browser; the rule approves the update;
// a real agent fails to install it (a package with a maintainer script in
// a root without a shell: the agent refuses to run it, and says so); the
// rollout halts itself and the Rollouts page shows it with the failing
// machine and its reason; the Resume button puts it back; the audit log
// has the rule, the halt and the resume. The updates catalog then finds the
// update by its CVE and by how many computers need it.
func TestConsoleRolloutsInBrowser(t *testing.T) {
	chromium := chromiumPath(t)
	ctx := context.Background()
	vendorDir := filepath.Join(t.TempDir(), "vendor")
	vr, err := tuf.Init(vendorDir, tuf.InitOptions{Name: "debian", BinBits: 2}, tuf.Options{})
	if err != nil {
		t.Fatal(err)
	}
	publishDeb(t, vr, "BW-1", debtest.Package{Name: "brokenpkg", Version: "1.0", Files: map[string]string{"/usr/share/brokenpkg/README": "x\n"},
		Postinst: "echo 'brokenpkg: cannot configure' >&2; exit 1"}, "reboot: never\ncves: [CVE-2026-4242]\n")
	vr.Close()
	srv, _, tok, first := startServerFirst(t, vendorDir)
	if _, err := srv.SyncAll(ctx, "", "manual"); err != nil { // index the update with its CVEs
		t.Fatal(err)
	}
	siteRoot, err := srv.SiteRootFingerprint()
	if err != nil {
		t.Fatal(err)
	}
	m := newMachine(t, srv.URL(), srv.CAFingerprint(), siteRoot, tok, "web-01", "0123456789abcdef0123456789abcdef")

	b := openBrowser(t, chromium, srv, srv.URL())
	b.signIn(first.AdminPassword)
	b.open("/console/rollouts")
	b.want("rollouts page", "Rollouts", "No install approvals yet", "Automatic approval rules", "No rules")
	b.checkLabels("rollouts")
	// Halt at the first failure in web.
	b.do(chromedp.SetValue(chromedp.CSS("#t-group"), "web"), chromedp.SetValue(chromedp.CSS("#t-pct"), "0"), chromedp.SetValue(chromedp.CSS("#t-min"), "1"))
	b.submit("#threshold-form button")
	// Critical updates go to web at once.
	b.do(chromedp.SetValue(chromedp.CSS("#r-group"), "web"), chromedp.SetValue(chromedp.CSS("#r-sev"), "critical"))
	b.submit("#rule-form button")
	b.want("rule made", "severity ≥ critical → web at once, rollout 100%")
	b.screenshot("rollouts-01-rule")

	act, err := srv.EvaluateRollouts(ctx)
	if err != nil || strings.Join(act.Approved, ",") != "web:debian/BW-1" {
		t.Fatalf("rule evaluation: %+v %v", act, err)
	}
	m.checkIn("auto") // fails: the postinst cannot run in this root
	if act, err = srv.EvaluateRollouts(ctx); err != nil || strings.Join(act.Halted, ",") != "web:debian/BW-1" {
		t.Fatalf("halt evaluation: %+v %v", act, err)
	}
	b.open("/console/rollouts")
	b.want("halted rollout", "halted", "1 of 1 results failed", "web-01")
	b.screenshot("rollouts-02-halted")
	b.submit(`#resume-web-debian-BW-1`)
	b.want("resumed rollout", "running")
	if eval[int](b, `document.querySelectorAll("#rollouts tr.halted, #rollouts form").length`) != 0 {
		t.Fatalf("still halted after resume:\n%s", b.text())
	}
	b.screenshot("rollouts-03-resumed")

	// The updates catalog by CVE and by how many computers need it.
	b.open("/console/updates")
	b.checkLabels("updates")
	b.do(chromedp.SetValue(chromedp.CSS("#u-cve"), "cve-2026-4242"), chromedp.SetValue(chromedp.CSS("#u-needed-min"), "1"))
	b.submit("form.filters button")
	b.want("updates by CVE", "debian/BW-1", "CVE-2026-4242")
	if n := eval[string](b, `document.querySelector("tbody tr td.num").textContent`); n != "1" {
		t.Fatalf("needed by %q computers, want 1", n)
	}
	b.screenshot("updates-cve")
	b.open("/console/updates?cve=CVE-2026-9999")
	b.want("updates by another CVE", "No updates match")
	b.open("/console/updates?cve=CVE-2026-4242&needed_min=2")
	b.want("updates needed by 2", "No updates match")
	b.open("/console/audit")
	b.want("audit", "rollout.threshold", "rule.create", "rule.approve", "rollout.halt", "rollout.resume")
	for _, u := range b.urls {
		if !strings.HasPrefix(u, srv.URL()) && !strings.HasPrefix(u, "data:") {
			t.Errorf("the browser requested %s, outside the server's origin", u)
		}
	}
}
