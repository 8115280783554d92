package e2e

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/bulwarkhq/bulwark/internal/agent"
	"github.com/bulwarkhq/bulwark/internal/debtest"
)

// TestConsoleGroupPolicyInBrowser: an admin opens a group's policy in a
// real browser, sets mode auto and a check-in interval, lets agent.yaml
// keep its own bandwidth limit, and saves; a real agent whose agent.yaml
// says notify takes the policy at its next check-in and installs the
// approved .deb; the audit log shows the change; a bad value is refused
// with the setting named. Every control is labelled; screenshots are kept.
func TestConsoleGroupPolicyInBrowser(t *testing.T) {
	chromium := chromiumPath(t)
	vendorDir := newVendorRepo(t, "debian", "BW-1", debtest.Package{Name: "libfoo", Version: "1.1", Files: map[string]string{"/usr/lib/libfoo.txt": "1.1\n"}})
	srv, _, tok, first := startServerFirst(t, vendorDir, "BW-1")

	root := debianRoot(t, "web-01", "0123456789abcdef0123456789abcdef")
	_, settings, _, _ := enroll(t, srv, tok, root, "notify")
	d, sc, closeAgent, err := agent.Build(settings, "amd64", "test", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer closeAgent()

	b := openBrowser(t, chromium, srv, srv.URL())
	b.signIn(first.AdminPassword)
	b.open("/console/groups")
	b.want("groups", "web", "policy")
	b.submit(`a[href="/console/groups/web/policy"]`)
	b.want("policy page", "Mode", "Check-in interval", "(agent.yaml decides)")
	b.checkLabels("group policy")
	b.screenshot("policy-01-empty")

	// A bad value is refused, naming the setting.
	b.do(chromedp.SetValue(chromedp.CSS("#p-detection_interval"), "5s"))
	b.submit("#policy-form button")
	b.want("refused policy", `detection_interval "5s": use a duration of at least 1m`)

	b.open("/console/groups/web/policy")
	b.do(chromedp.SetValue(chromedp.CSS("#p-mode"), "auto"),
		chromedp.SetValue(chromedp.CSS("#p-auto_install_severity"), "critical"),
		chromedp.SetValue(chromedp.CSS("#p-detection_interval"), "2h"),
		chromedp.SetValue(chromedp.CSS("#p-bandwidth_limit"), "8mbit"),
		chromedp.Click(chromedp.CSS("#a-bandwidth_limit")))
	b.submit("#policy-form button")
	b.want("saved policy", "Last changed", "by user:admin")
	if v := eval[string](b, `document.getElementById("p-mode").value`); v != "auto" {
		t.Fatalf("saved mode shows %q", v)
	}
	if !eval[bool](b, `document.getElementById("a-bandwidth_limit").checked`) || eval[bool](b, `document.getElementById("a-mode").checked`) {
		t.Fatal("allow_local checkboxes not as saved")
	}
	b.screenshot("policy-02-saved")

	// The real agent takes it at its next check-in and installs.
	if err := d.CheckInWith(context.Background(), sc); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(root, "usr/lib/libfoo.txt")); err != nil || string(got) != "1.1\n" {
		t.Fatalf("the agent did not install under the group policy: %q %v (status %+v)", got, err, d.Status())
	}
	b.open("/console/audit")
	b.want("audit", "group.policy", `policy {"mode":"auto"`)
	b.screenshot("policy-03-audit")
	for _, u := range b.urls {
		if !strings.HasPrefix(u, srv.URL()) && !strings.HasPrefix(u, "data:") {
			t.Errorf("the browser requested %s, outside the server's origin", u)
		}
	}
}
