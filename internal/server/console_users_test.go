package server

import (
	"context"
	"database/sql"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/store"
)

// clock is a settable time for a test server.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func signedIn(b *browser) bool {
	b.t.Helper()
	_, body, _ := b.get("/console/")
	return !strings.Contains(body, `action="/console/signin"`)
}

// TestConsoleUserAdmin: an admin changes a user's role (it counts at
// once), disables it (its sessions end, sign-in is refused) and enables
// it, and resets its password: the temporary one is shown once, ends the
// user's sessions, and lets the user do nothing but choose a new one. The
// last enabled admin can be neither demoted nor disabled. Every change is
// in the audit log.
func TestConsoleUserAdmin(t *testing.T) {
	// Sign-ins and password changes are throttled per user name (one
	// every 12 s); the server's clock moves 5 s at every reading (a few
	// a request), so none waits, and no session sits idle for 30 minutes.
	clk := &clock{t: time.Now()}
	ts := startServer(t, Config{Now: func() time.Time { clk.add(5 * time.Second); return clk.now() }})
	ctx := context.Background()
	admin := newBrowser(t, ts)
	admin.signIn("admin", ts.first.AdminPassword)
	admin.get("/console/users")
	if code, body, _ := admin.post("/console/users", url.Values{"name": {"bob"}, "role": {"approver"}, "password": {"bob's first password"}}, nil); code != 200 || !strings.Contains(body, "Set role of bob") {
		t.Fatalf("create bob: %d %s", code, body)
	}
	bob := newBrowser(t, ts)
	bob.signIn("bob", "bob's first password")
	if _, body, _ := bob.get("/console/"); !strings.Contains(body, "bob (approver)") {
		t.Fatalf("bob's dashboard:\n%s", body)
	}

	// Role: counts from bob's next request.
	if code, body, _ := admin.post("/console/users/bob/role", url.Values{"role": {"viewer"}}, nil); code != 200 {
		t.Fatalf("set role: %d %s", code, body)
	}
	if _, body, _ := bob.get("/console/"); !strings.Contains(body, "bob (viewer)") {
		t.Fatalf("bob after the role change:\n%s", body)
	}
	if code, body, _ := admin.post("/console/users/bob/role", url.Values{"role": {"root"}}, nil); code != 400 || !strings.Contains(body, "use admin, approver or viewer") {
		t.Fatalf("bad role: %d %s", code, body)
	}

	// Disable: bob's session ends and the right password no longer works.
	admin.post("/console/users/bob/disable", nil, nil)
	if signedIn(bob) {
		t.Fatal("bob is still signed in after being disabled")
	}
	if code, _, _ := newBrowser(t, ts).post("/console/signin", url.Values{"name": {"bob"}, "password": {"bob's first password"}}, nil); code != http.StatusUnauthorized {
		t.Fatalf("disabled bob signs in: %d", code)
	}
	if _, body, _ := admin.get("/console/users"); !strings.Contains(body, "Enable bob") || !strings.Contains(body, "disabled ") {
		t.Fatalf("users page after disabling:\n%s", body)
	}
	admin.post("/console/users/bob/enable", nil, nil)
	bob = newBrowser(t, ts)
	bob.signIn("bob", "bob's first password")

	// Password reset: shown once, bob's sessions end, the temporary
	// password leads only to the password form.
	code, body, _ := admin.post("/console/users/bob/password", nil, nil)
	m := regexp.MustCompile(`Temporary password for <strong>bob</strong>[^<]*<code>([a-z2-7]{24})</code>`).FindStringSubmatch(body)
	if code != 200 || m == nil {
		t.Fatalf("reset: %d %s", code, body)
	}
	temp := m[1]
	if _, body, _ := admin.get("/console/users"); strings.Contains(body, temp) {
		t.Fatal("the temporary password is shown again")
	}
	if signedIn(bob) {
		t.Fatal("bob is still signed in after the reset")
	}
	if code, _, _ := newBrowser(t, ts).post("/console/signin", url.Values{"name": {"bob"}, "password": {"bob's first password"}}, nil); code != http.StatusUnauthorized {
		t.Fatalf("the old password after a reset: %d", code)
	}
	bob = newBrowser(t, ts)
	code, body, _ = bob.post("/console/signin", url.Values{"name": {"bob"}, "password": {temp}}, nil)
	if code != 200 || !strings.Contains(body, "choose your own before going on") {
		t.Fatalf("sign-in with the temporary password: %d %s", code, body)
	}
	if _, body, _ := bob.get("/console/computers"); !strings.Contains(body, `action="/console/password"`) {
		t.Fatalf("a page before the new password:\n%s", body)
	}
	if code, _, _ := bob.post("/console/groups", url.Values{"name": {"bobs"}}, nil); code != http.StatusForbidden {
		t.Fatalf("a post before the new password: %d", code)
	}
	bob.get("/console/password")
	for _, bad := range []struct {
		form url.Values
		want string
	}{
		{url.Values{"current": {"wrong password!!"}, "new": {"bob's new password"}, "again": {"bob's new password"}}, "current password is wrong"},
		{url.Values{"current": {temp}, "new": {"bob's new password"}, "again": {"bob's other password"}}, "differ"},
		{url.Values{"current": {temp}, "new": {temp}, "again": {temp}}, "other than the current one"},
		{url.Values{"current": {temp}, "new": {"short"}, "again": {"short"}}, "12 characters"},
	} {
		if code, body, _ := bob.post("/console/password", bad.form, nil); code == 200 || code == http.StatusSeeOther || !strings.Contains(body, bad.want) {
			t.Errorf("password change %v: %d, want an error saying %q:\n%s", bad.form, code, bad.want, body)
		}
	}
	if code, body, _ := bob.post("/console/password", url.Values{"current": {temp}, "new": {"bob's new password"}, "again": {"bob's new password"}}, nil); code != 200 || !strings.Contains(body, "Dashboard") {
		t.Fatalf("password change: %d %s", code, body)
	}
	if !signedIn(bob) {
		t.Fatal("bob is signed out after changing the password")
	}
	newBrowser(t, ts).signIn("bob", "bob's new password")
	if u, _ := ts.st.User(ctx, "bob"); u.MustChange {
		t.Fatalf("bob still must change the password: %+v", u)
	}

	// The last enabled admin: neither demoted nor disabled, in the
	// console or the API.
	for _, action := range []string{"role", "disable"} {
		code, body, _ := admin.post("/console/users/admin/"+action, url.Values{"role": {"viewer"}}, nil)
		if code != http.StatusConflict || !strings.Contains(body, "last enabled admin") {
			t.Errorf("%s the last admin: %d %s", action, code, body)
		}
	}
	ts.admin("PATCH", "/api/v1/users/admin", UserChange{Disabled: new(true)}, http.StatusConflict)
	// With a second admin, the first can step down.
	ts.admin("PATCH", "/api/v1/users/bob", UserChange{Role: "admin"}, http.StatusOK)
	if code, body, _ := admin.post("/console/users/admin/role", url.Values{"role": {"approver"}}, nil); code != 200 {
		t.Fatalf("demote admin beside bob: %d %s", code, body)
	}
	if u, _ := ts.st.User(ctx, "admin"); u.Role != store.RoleApprover {
		t.Fatalf("admin = %+v", u)
	}

	es, err := ts.st.ListAudit(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range es {
		if e.Via == "console" && strings.HasPrefix(e.Action, "user.") {
			got = append([]string{e.Action + " " + e.Target}, got...)
		}
	}
	want := "user.create bob,user.role bob,user.disable bob,user.enable bob,user.password-reset bob,user.password-change bob,user.role admin"
	if strings.Join(got, ",") != want {
		t.Fatalf("audit:\n got %s\nwant %s", strings.Join(got, ","), want)
	}
}

// TestUserAdminAPI: the same through the API: a reset with a chosen
// password and one the server makes.
func TestUserAdminAPI(t *testing.T) {
	ts := startServer(t, Config{})
	ts.admin("POST", "/api/v1/users", UserRequest{Name: "carol", Role: "viewer", Password: "carol's password"}, http.StatusCreated)
	var u store.User
	json.Unmarshal(ts.admin("PATCH", "/api/v1/users/carol", UserChange{Role: "approver", Disabled: new(true)}, http.StatusOK), &u)
	if u.Role != store.RoleApprover || u.DisabledAt == nil {
		t.Fatalf("after PATCH: %+v", u)
	}
	ts.admin("PATCH", "/api/v1/users/carol", UserChange{}, http.StatusBadRequest)
	ts.admin("PATCH", "/api/v1/users/carol", UserChange{Disabled: new(false)}, http.StatusOK)
	var pr PasswordResetResponse
	json.Unmarshal(ts.admin("POST", "/api/v1/users/carol/password", nil, http.StatusOK), &pr)
	if len(pr.Password) != 24 {
		t.Fatalf("made password %q", pr.Password)
	}
	b := newBrowser(t, ts)
	if code, body, _ := b.post("/console/signin", url.Values{"name": {"carol"}, "password": {pr.Password}}, nil); code != 200 || !strings.Contains(body, "choose your own") {
		t.Fatalf("carol with the made password: %d %s", code, body)
	}
	json.Unmarshal(ts.admin("POST", "/api/v1/users/carol/password", PasswordReset{Password: "a chosen temporary"}, http.StatusOK), &pr)
	if pr.Password != "a chosen temporary" {
		t.Fatalf("chosen password answered as %q", pr.Password)
	}
	if signedIn(b) {
		t.Fatal("carol's session survived the second reset")
	}
}

// TestAttackUnderPrivilegedAdministration: viewers and approvers, by API
// token or console session, cannot make tokens, change roles, reset
// passwords, delete groups or revoke computers; an admin's session cannot
// be made to do it by another site (no CSRF token, or a cross-site post).
func TestAttackUnderPrivilegedAdministration(t *testing.T) {
	ts, _ := consoleServer(t)
	ctx := context.Background()
	ts.admin("POST", "/api/v1/groups", GroupRequest{Name: "web"}, http.StatusCreated)
	a := ts.enroll(ts.newToken(TokenRequest{Kind: "enroll", Group: "web"}), machineA, "")
	ts.admin("POST", "/api/v1/users", UserRequest{Name: "vera", Role: "viewer", Password: "vera's password"}, http.StatusCreated)
	ts.admin("POST", "/api/v1/users", UserRequest{Name: "amos", Role: "approver", Password: "amos's password"}, http.StatusCreated)
	tokensBefore, _ := ts.st.ListTokens(ctx, "")
	hashBefore, _ := ts.st.User(ctx, FirstAdminUser)

	for _, role := range []string{"viewer", "approver"} {
		tok := ts.newToken(TokenRequest{Kind: "api", Role: role})
		for _, c := range []struct {
			method, path string
			body         any
		}{
			{"POST", "/api/v1/tokens", TokenRequest{Kind: "api", Role: "admin"}},
			{"PATCH", "/api/v1/users/" + role[:1] + map[string]string{"viewer": "era", "approver": "mos"}[role], UserChange{Role: "admin"}},
			{"PATCH", "/api/v1/users/admin", UserChange{Disabled: new(true)}},
			{"POST", "/api/v1/users/admin/password", PasswordReset{Password: "attacker's choice"}},
			{"POST", "/api/v1/users", UserRequest{Name: "mallory", Role: "admin", Password: "mallory's password"}},
			{"DELETE", "/api/v1/groups/web", nil},
			{"POST", "/api/v1/computers/" + a.resp.AgentID + "/revoke", nil},
		} {
			if code, body, _ := ts.do(ts.client, c.method, c.path, tok, c.body); code != http.StatusForbidden {
				t.Errorf("%s token: %s %s = %d %s, want 403", role, c.method, c.path, code, body)
			}
		}
	}
	consolePosts := []struct {
		path string
		form url.Values
	}{
		{"/console/tokens", url.Values{"kind": {"api"}, "role": {"admin"}, "days": {"0"}}},
		{"/console/users/vera/role", url.Values{"role": {"admin"}}},
		{"/console/users/admin/disable", nil},
		{"/console/users/admin/password", nil},
		{"/console/groups/web/delete", url.Values{"confirm": {"yes"}}},
		{"/console/computers/" + a.resp.AgentID + "/revoke", url.Values{"confirm": {"yes"}}},
		{"/console/computers/" + a.resp.AgentID + "/remove", url.Values{"confirm": {"yes"}}},
	}
	for _, u := range []struct{ name, pw string }{{"vera", "vera's password"}, {"amos", "amos's password"}} {
		b := newBrowser(t, ts)
		b.signIn(u.name, u.pw)
		for _, p := range consolePosts {
			if code, body, _ := b.post(p.path, cloneForm(p.form), nil); code != http.StatusForbidden || !strings.Contains(body, "needs the admin role") {
				t.Errorf("%s: POST %s = %d, want 403 naming the admin role: %s", u.name, p.path, code, body)
			}
		}
	}
	admin := newBrowser(t, ts)
	admin.signIn("admin", ts.first.AdminPassword)
	admin.get("/console/users")
	for _, p := range consolePosts {
		form := cloneForm(p.form)
		form.Set("csrf", "forged")
		if code, body, _ := admin.post(p.path, form, nil); code != http.StatusForbidden || !strings.Contains(body, "CSRF token") {
			t.Errorf("admin without the CSRF token: POST %s = %d", p.path, code)
		}
		if code, body, _ := admin.post(p.path, cloneForm(p.form), map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.test"}); code != http.StatusForbidden || !strings.Contains(body, "cross-origin request refused") {
			t.Errorf("cross-site: POST %s = %d", p.path, code)
		}
	}
	// Nothing changed.
	tokensAfter, _ := ts.st.ListTokens(ctx, "")
	if len(tokensAfter) != len(tokensBefore)+2 { // the two tokens this test made
		t.Errorf("tokens: %d before, %d after", len(tokensBefore), len(tokensAfter))
	}
	for name, role := range map[string]string{"vera": "viewer", "amos": "approver", "admin": "admin"} {
		if u, _ := ts.st.User(ctx, name); u.Role != role || u.DisabledAt != nil {
			t.Errorf("%s = %+v", name, u)
		}
	}
	if u, _ := ts.st.User(ctx, FirstAdminUser); u.Hash != hashBefore.Hash {
		t.Error("the admin's password changed")
	}
	if _, err := ts.st.User(ctx, "mallory"); err == nil {
		t.Error("mallory exists")
	}
	if c, err := ts.st.Agent(ctx, a.resp.AgentID); err != nil || c.Status != store.AgentActive || c.Group != "web" {
		t.Errorf("computer = %+v %v", c, err)
	}
}

// TestConsoleSessionTimeouts: a session ends after 30 idle minutes, and
// 12 hours after sign-in however busy it is.
func TestConsoleSessionTimeouts(t *testing.T) {
	clk := &clock{t: time.Now()}
	ts := startServer(t, Config{Now: clk.now})
	b := newBrowser(t, ts)
	b.signIn("admin", ts.first.AdminPassword)
	// Busy: a request every 29 minutes keeps it alive past the idle time.
	for range 3 {
		clk.add(29 * time.Minute)
		if !signedIn(b) {
			t.Fatalf("signed out after 29 minutes idle")
		}
	}
	clk.add(sessionIdle)
	if signedIn(b) {
		t.Fatalf("still signed in after %v idle", sessionIdle)
	}
	// The idle session was deleted, not just refused.
	if n := countSessions(t, ts); n != 0 {
		t.Fatalf("%d sessions left after the idle timeout", n)
	}
	// Absolute: busy every 20 minutes, it still ends at 12 h.
	b = newBrowser(t, ts)
	b.signIn("admin", ts.first.AdminPassword)
	start := clk.now()
	for clk.now().Sub(start) < sessionTTL-20*time.Minute {
		clk.add(20 * time.Minute)
		if !signedIn(b) {
			t.Fatalf("signed out %v after sign-in while busy", clk.now().Sub(start))
		}
	}
	clk.add(20 * time.Minute)
	if signedIn(b) {
		t.Fatalf("still signed in %v after sign-in", clk.now().Sub(start))
	}
}

func cloneForm(f url.Values) url.Values {
	out := url.Values{}
	for k, v := range f {
		out[k] = append([]string(nil), v...)
	}
	return out
}

func countSessions(t testing.TB, ts *testServer) int {
	t.Helper()
	db, ok := ts.st.(interface{ SQL() *sql.DB })
	if !ok {
		t.Fatalf("store %T has no SQL()", ts.st)
	}
	var n int
	if err := db.SQL().QueryRow(`SELECT COUNT(*) FROM sessions`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
