package e2e

import (
	"encoding/json"
	"net/http"
	"regexp"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/bulwarkhq/bulwark/internal/pki"
	"github.com/bulwarkhq/bulwark/internal/server"
)

// TestConsoleAdministrationInBrowser drives the console's administration
// pages in a real Chromium: a new user, a role change, a password reset
// whose temporary password sends the user to the password form and
// nowhere else until changed, an API token (its secret shown once, and it
// works), deleting a group a real enrolled machine is in (the confirmation
// counts it and asks where it goes), and revoking that machine. Every
// control is labelled; screenshots are kept.
func TestConsoleAdministrationInBrowser(t *testing.T) {
	chromium := chromiumPath(t)
	srv, first := serve(t, server.Config{})
	base := srv.URL()
	tc, err := pki.PinnedClientConfig(srv.CAFingerprint())
	if err != nil {
		t.Fatal(err)
	}
	adm := admin{t: t, url: base, token: first.AdminToken, hc: &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}}
	b := openBrowser(t, chromium, srv, base)
	b.signIn(first.AdminPassword)

	// A new user, then a role change.
	b.open("/console/users")
	b.do(chromedp.SetValue(chromedp.CSS("#u-name"), "bob"), chromedp.SetValue(chromedp.CSS("#u-role"), "approver"),
		chromedp.SetValue(chromedp.CSS("#u-pw"), "bob's first password"))
	b.submit(`form[action="/console/users"] button`)
	b.want("users after create", "bob", "approver")
	b.do(chromedp.SetValue(chromedp.CSS("#role-bob"), "viewer"))
	b.submit(`form[action="/console/users/bob/role"] button`)
	var users struct{ Users []struct{ Name, Role string } }
	json.Unmarshal(adm.do("GET", "/api/v1/users", nil, http.StatusOK), &users)
	if len(users.Users) != 2 || users.Users[1].Name != "bob" || users.Users[1].Role != "viewer" {
		t.Fatalf("users after the role change: %+v", users)
	}
	// The last admin cannot demote itself.
	b.do(chromedp.SetValue(chromedp.CSS("#role-admin"), "viewer"))
	b.submit(`form[action="/console/users/admin/role"] button`)
	b.want("demoting the last admin", "last enabled admin user")
	b.open("/console/users")
	b.checkLabels("users")
	// A password reset: the temporary password is shown once.
	b.submit(`form[action="/console/users/bob/password"] button`)
	m := regexp.MustCompile(`Temporary password for bob .*: ([a-z2-7]{24})`).FindStringSubmatch(b.text())
	if m == nil {
		t.Fatalf("no temporary password shown:\n%s", b.text())
	}
	b.screenshot("15-users-reset")

	// An API token with a role, its secret shown once.
	b.open("/console/tokens")
	b.do(chromedp.SetValue(chromedp.CSS("#a-role"), "viewer"), chromedp.SetValue(chromedp.CSS("#a-name"), "dashboards"))
	b.submit(`form:has(#a-role) button`)
	tm := regexp.MustCompile(`New API token .*: (bwa_[a-z2-7]{52})`).FindStringSubmatch(b.text())
	if tm == nil {
		t.Fatalf("no API token shown:\n%s", b.text())
	}
	b.checkLabels("tokens")
	b.screenshot("16-tokens-api")
	viewer := admin{t: t, url: base, token: tm[1], hc: adm.hc}
	viewer.do("GET", "/api/v1/groups", nil, http.StatusOK)
	viewer.do("POST", "/api/v1/groups", map[string]string{"name": "x"}, http.StatusForbidden)

	// A real machine enrolls into group lab; deleting lab says so.
	adm.do("POST", "/api/v1/groups", map[string]string{"name": "lab"}, http.StatusCreated)
	var tok struct{ Token string }
	json.Unmarshal(adm.do("POST", "/api/v1/tokens", map[string]any{"kind": "enroll", "group": "lab", "max_uses": 1}, http.StatusCreated), &tok)
	siteRoot, err := srv.SiteRootFingerprint()
	if err != nil {
		t.Fatal(err)
	}
	mach := newMachine(t, base, srv.CAFingerprint(), siteRoot, tok.Token, "lab-01", "abcdef0123456789abcdef0123456789")
	b.open("/console/groups")
	b.submit(`form[action="/console/groups/lab/delete"] button`)
	b.want("group delete confirmation", "Delete group lab.", "1 computers are in it", "0 approvals of this group are deleted", "Move its computers to")
	b.checkLabels("group delete confirmation")
	b.screenshot("17-group-delete-confirm")
	b.submit(`form[action="/console/groups/lab/delete"] button`)
	b.want("groups after delete", "default")
	var comp struct{ Group, Status string }
	json.Unmarshal(adm.do("GET", "/api/v1/computers/"+mach.id, nil, http.StatusOK), &comp)
	if comp.Group != "default" {
		t.Fatalf("the machine is in %q after its group was deleted", comp.Group)
	}

	// Revoke the machine, after the confirmation.
	b.open("/console/computers/" + mach.id)
	b.submit(`form[action$="/revoke"] button`)
	b.want("revoke confirmation", "Revoke lab-01", "enrolling again with a new token")
	b.screenshot("18-computer-revoke-confirm")
	b.submit(`form[action$="/revoke"] button`)
	b.want("computer after revoke", "revoked by user:admin")
	json.Unmarshal(adm.do("GET", "/api/v1/computers/"+mach.id, nil, http.StatusOK), &comp)
	if comp.Status != "revoked" {
		t.Fatalf("machine status %q after revoke", comp.Status)
	}

	// bob signs in with the temporary password: only the password form.
	b.submit(`form.signout button`)
	b.do(chromedp.SetValue(chromedp.CSS("#name"), "bob"), chromedp.SetValue(chromedp.CSS("#password"), m[1]))
	b.submit("form.signin button")
	b.want("forced password change", "choose your own before going on")
	b.checkLabels("password")
	b.screenshot("19-password-forced")
	b.open("/console/computers")
	b.want("another page before the change", "Change password", "Current password")
	b.do(chromedp.SetValue(chromedp.CSS("#pw-current"), m[1]), chromedp.SetValue(chromedp.CSS("#pw-new"), "bob's own password"),
		chromedp.SetValue(chromedp.CSS("#pw-again"), "bob's own password"))
	b.submit(`form[action="/console/password"] button`)
	b.want("dashboard after the change", "Dashboard", "bob (viewer)")
}
