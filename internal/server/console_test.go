package server

import (
	"context"
	"encoding/csv"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/bulwarkhq/bulwark/internal/store"
	"github.com/bulwarkhq/bulwark/internal/wire"
)

// Password hashing at the production cost makes every test server's first
// start slow under -race; TestPasswordHash checks the production values.
func init() { argon = argonParams{Time: 1, Memory: 64, Threads: 1} }

func TestPasswordHash(t *testing.T) {
	ts := startServer(t, Config{})
	u, err := ts.st.User(context.Background(), FirstAdminUser)
	if err != nil {
		t.Fatal(err)
	}
	p, salt, key, err := parseArgon2id(u.Hash)
	if err != nil || p != argon || len(salt) != argonSaltLen || len(key) != argonKeyLen {
		t.Fatalf("first admin's hash %q: %+v %v", u.Hash, p, err)
	}
	// RFC 9106 section 4, second recommended option.
	if d := defaultArgon; d.Time < 3 || d.Memory < 64<<10 || d.Threads < 4 {
		t.Fatalf("production argon2id parameters %+v, want at least t=3 m=64 MiB p=4", d)
	}
	if strings.Contains(u.Hash, ts.first.AdminPassword) {
		t.Fatal("the password is stored in clear")
	}
	if ok, stale := verifyPassword(u.Hash, ts.first.AdminPassword); !ok || stale {
		t.Fatalf("verify the first admin's password: ok %v stale %v", ok, stale)
	}
	if ok, _ := verifyPassword(u.Hash, ts.first.AdminPassword+"x"); ok {
		t.Fatal("a wrong password verifies")
	}
}

// TestPasswordUpgradeFromBcrypt: a user whose hash is from before argon2id
// signs in with it, and the hash is replaced by an argon2id one; a wrong
// password changes nothing.
func TestPasswordUpgradeFromBcrypt(t *testing.T) {
	ts := startServer(t, Config{})
	ctx := context.Background()
	const pw = "an old bcrypt password"
	old, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if err := ts.st.CreateUser(ctx, &store.User{Name: "olduser", Role: store.RoleViewer, Hash: string(old), CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, ts)
	if code, _, _ := b.post("/console/signin", url.Values{"name": {"olduser"}, "password": {"not the password!"}}, nil); code != http.StatusUnauthorized {
		t.Fatalf("wrong password: %d", code)
	}
	if u, _ := ts.st.User(ctx, "olduser"); u.Hash != string(old) {
		t.Fatalf("a failed sign-in changed the hash to %q", u.Hash)
	}
	b.signIn("olduser", pw)
	u, err := ts.st.User(ctx, "olduser")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(u.Hash, "$argon2id$v=19$") {
		t.Fatalf("hash after sign-in = %q, want argon2id", u.Hash)
	}
	if ok, stale := verifyPassword(u.Hash, pw); !ok || stale {
		t.Fatalf("the new hash: ok %v stale %v", ok, stale)
	}
	newBrowser(t, ts).signIn("olduser", pw)
	// Weaker argon2id parameters are upgraded the same way.
	weak := argon
	argon = argonParams{Time: 2, Memory: 128, Threads: 1}
	defer func() { argon = weak }()
	newBrowser(t, ts).signIn("olduser", pw)
	if u, _ := ts.st.User(ctx, "olduser"); !strings.Contains(u.Hash, "$m=128,t=2,p=1$") {
		t.Fatalf("hash after the parameters grew = %q", u.Hash)
	}
}

func TestParseArgon2id(t *testing.T) {
	good, err := hashPassword("a good password")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := parseArgon2id(good); err != nil {
		t.Fatalf("%s: %v", good, err)
	}
	salt, key := "c2FsdHNhbHRzYWx0c2FsdA", "a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U"
	for name, h := range map[string]string{
		"bcrypt":          "$2b$10$abcdefghijklmnopqrstuu",
		"argon2i":         "$argon2i$v=19$m=64,t=1,p=1$" + salt + "$" + key,
		"old version":     "$argon2id$v=16$m=64,t=1,p=1$" + salt + "$" + key,
		"huge memory":     "$argon2id$v=19$m=4194304,t=1,p=1$" + salt + "$" + key,
		"many passes":     "$argon2id$v=19$m=64,t=1000,p=1$" + salt + "$" + key,
		"no lanes":        "$argon2id$v=19$m=64,t=1,p=0$" + salt + "$" + key,
		"trailing junk":   "$argon2id$v=19$m=64,t=1,p=1x$" + salt + "$" + key,
		"short salt":      "$argon2id$v=19$m=64,t=1,p=1$c2FsdA$" + key,
		"bad base64":      "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$!!!",
		"missing a field": "$argon2id$v=19$m=64,t=1,p=1$" + salt,
		"empty":           "",
	} {
		if _, _, _, err := parseArgon2id(h); err == nil {
			t.Errorf("%s: %q parsed", name, h)
		}
		if ok, _ := verifyPassword(h, "a good password"); ok {
			t.Errorf("%s: %q verifies", name, h)
		}
	}
}

// FuzzParseArgon2id: a stored hash never panics the parser, and what
// parses is within the bounds a sign-in may cost.
func FuzzParseArgon2id(f *testing.F) {
	f.Add("$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHRzYWx0c2FsdA$a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U")
	f.Add("$argon2id$v=19$m=64,t=1,p=1$$")
	f.Add("$2b$10$abcdefghijklmnopqrstuu")
	f.Fuzz(func(t *testing.T, h string) {
		p, _, _, err := parseArgon2id(h)
		if err == nil && (p.Memory > 1<<20 || p.Time > 16 || p.Threads > 16) {
			t.Fatalf("%q parsed to %+v", h, p)
		}
	})
}

// browser is a console client: the server's pinned TLS, a cookie jar, and
// the CSRF token of the last page it read.
type browser struct {
	t    testing.TB
	ts   *testServer
	c    *http.Client
	csrf string
}

func newBrowser(t testing.TB, ts *testServer) *browser {
	jar, _ := cookiejar.New(nil)
	c := pinnedClient(t, ts.CAFingerprint(), nil)
	c.Jar = jar
	return &browser{t: t, ts: ts, c: c}
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (b *browser) send(req *http.Request) (int, string, http.Header) {
	b.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if m := csrfField.FindSubmatch(body); m != nil {
		b.csrf = string(m[1])
	}
	return resp.StatusCode, string(body), resp.Header
}

func (b *browser) get(path string) (int, string, http.Header) {
	req, _ := http.NewRequest("GET", b.ts.url+path, nil)
	return b.send(req)
}

// post sends a form with the page's CSRF token (unless form has one) and
// any extra headers.
func (b *browser) post(path string, form url.Values, hdr map[string]string) (int, string, http.Header) {
	if form == nil {
		form = url.Values{}
	}
	if _, ok := form["csrf"]; !ok && b.csrf != "" {
		form.Set("csrf", b.csrf)
	}
	req, _ := http.NewRequest("POST", b.ts.url+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	return b.send(req)
}

func (b *browser) signIn(name, password string) {
	b.t.Helper()
	code, body, _ := b.post("/console/signin", url.Values{"name": {name}, "password": {password}}, nil)
	if code != http.StatusOK || !strings.Contains(body, "Dashboard") {
		b.t.Fatalf("sign in: %d %s", code, body)
	}
}

func consoleServer(t *testing.T) (*testServer, *vendorRepo) {
	v := newVendorRepo(t, "example")
	v.publish(t, "BW-1", "critical", map[string]string{"a.deb": "aaaa"})
	v.publish(t, "BW-2", "low", map[string]string{"b.deb": "bb"})
	ts := startServer(t, Config{Vendors: []HostedVendor{{Name: "example", Dir: v.dir}}})
	if _, err := ts.SyncAll(context.Background(), "", "manual"); err != nil {
		t.Fatal(err)
	}
	return ts, v
}

func TestConsoleFirstAdminSignsInApprovesAndExports(t *testing.T) {
	ts, _ := consoleServer(t)
	if ts.first.AdminUser != "admin" || len(ts.first.AdminPassword) < minPasswordLen {
		t.Fatalf("first start = %+v", ts.first)
	}
	b := newBrowser(t, ts)
	// Not signed in: every page sends to the sign-in form.
	code, body, hdr := b.get("/console/computers")
	if code != http.StatusOK || !strings.Contains(body, `action="/console/signin"`) {
		t.Fatalf("signed out: %d %s", code, body)
	}
	if csp := hdr.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") || strings.Contains(csp, "unsafe") {
		t.Fatalf("CSP = %q", csp)
	}
	// A wrong password is refused; the right one gives a session cookie
	// that scripts and other sites cannot use.
	if code, _, _ := b.post("/console/signin", url.Values{"name": {"admin"}, "password": {"wrong-password-1"}}, nil); code != http.StatusUnauthorized {
		t.Fatalf("wrong password: %d", code)
	}
	req, _ := http.NewRequest("POST", ts.url+"/console/signin", strings.NewReader(url.Values{"name": {"admin"}, "password": {ts.first.AdminPassword}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	c := pinnedClient(t, ts.CAFingerprint(), nil)
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cookie := resp.Header.Get("Set-Cookie")
	for _, want := range []string{"__Host-bulwark-session=", "Path=/", "HttpOnly", "Secure", "SameSite=Strict"} {
		if !strings.Contains(cookie, want) {
			t.Errorf("session cookie %q lacks %s", cookie, want)
		}
	}
	b.signIn("admin", ts.first.AdminPassword)

	// An agent in group web reports BW-1 needed.
	ts.admin("POST", "/api/v1/groups", GroupRequest{Name: "web"}, http.StatusCreated)
	a := ts.enroll(ts.newToken(TokenRequest{Kind: "enroll", Group: "web"}), machineA, "")
	now := time.Now().UTC()
	rep := wire.ReportRequest{BatchID: "b-1", Changes: []wire.StateChange{{Key: "example/BW-1", State: "needed", Time: now}},
		Inventory: &wire.Inventory{OS: "debian 12", Packages: []wire.Package{{Name: "libssl3", Version: "3.0.11-1~deb12u2", Arch: "amd64"}}}}
	if code, body, _ := ts.agentDo(a, a.client, "POST", "/agent/v1/report", rep, nil); code != 200 {
		t.Fatalf("report: %d %s", code, body)
	}
	// The dashboard counts it and links to the list behind the number.
	_, body, _ = b.get("/console/")
	if !strings.Contains(body, `<span class="n">1</span> missing critical updates`) || !strings.Contains(body, "<svg") {
		t.Fatalf("dashboard does not count the machine missing a critical update:\n%s", body)
	}
	_, body, _ = b.get("/console/computers?missing=critical")
	if !strings.Contains(body, "host-01234567") || !strings.Contains(body, "1 computers match") {
		t.Fatalf("computers missing critical:\n%s", body)
	}
	_, body, _ = b.get("/console/computers/" + a.resp.AgentID)
	if !strings.Contains(body, "libssl3") || !strings.Contains(body, `critical (1)`) {
		t.Fatalf("computer page lacks inventory or missing updates:\n%s", body)
	}

	// Approve: the first post only states what it will touch.
	b.get("/console/updates/example/BW-1")
	form := url.Values{"group": {"web"}, "action": {"install"}, "rollout": {"100"}}
	code, body, _ = b.post("/console/updates/example/BW-1/approval", form, nil)
	if code != 200 || !strings.Contains(body, "This touches <strong>1</strong> computers in web; <strong>1</strong> of them") {
		t.Fatalf("confirmation: %d %s", code, body)
	}
	if aps, _ := ts.st.Approvals(context.Background(), "web"); len(aps) != 0 {
		t.Fatalf("approved before confirmation: %+v", aps)
	}
	form.Set("confirm", "yes")
	if code, body, _ = b.post("/console/updates/example/BW-1/approval", form, nil); code != 200 {
		t.Fatalf("confirm: %d %s", code, body)
	}
	doc := siteApprovals(t, ts, "web")
	if ap := doc.Find("example", "BW-1"); ap == nil || ap.Action != "install" {
		t.Fatalf("signed approvals after the console approved: %+v", doc)
	}
	// The audit log has who, what, from where.
	es, err := ts.st.ListAudit(context.Background(), 0, 10)
	if err != nil || len(es) == 0 || es[0].Action != "approval.install" || es[0].Actor != "user:admin" || es[0].Remote != "127.0.0.1" || es[0].Via != "console" {
		t.Fatalf("audit = %+v %v", es, err)
	}
	_, body, _ = b.get("/console/audit")
	if !strings.Contains(body, "approval.install") || !strings.Contains(body, "<td>POST /api/v1/groups</td>") {
		t.Fatalf("audit page lacks the console and API actions:\n%s", body)
	}

	// Export per computer as CSV.
	code, body, hdr = b.get("/console/export/computers.csv")
	rows, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if code != 200 || err != nil || len(rows) != 2 || rows[1][1] != "host-01234567" || rows[1][6] != "1" || !strings.HasPrefix(hdr.Get("Content-Type"), "text/csv") {
		t.Fatalf("export: %d %v %q", code, err, body)
	}
	// Unknown filter values are errors, not empty lists.
	for _, p := range []string{"/console/computers?missing=sometimes", "/console/computers?colour=red", "/console/updates?severity=huge", "/console/export/computers.xml"} {
		if code, _, _ := b.get(p); code != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", p, code)
		}
	}
}

// TestAttackCrossSiteFormPost: a page on another site makes the signed-in
// admin's browser post a form (the cookie would be SameSite=Strict anyway;
// this is the server's own check), or a script without the CSRF token.
func TestAttackCrossSiteFormPost(t *testing.T) {
	ts, _ := consoleServer(t)
	b := newBrowser(t, ts)
	b.signIn("admin", ts.first.AdminPassword)
	b.get("/console/groups")
	for name, hdr := range map[string]map[string]string{
		"cross-site":     {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.test"},
		"foreign origin": {"Origin": "https://evil.test"},
	} {
		code, body, _ := b.post("/console/groups", url.Values{"name": {"evil-" + strings.ReplaceAll(name, " ", "-")}}, hdr)
		if code != http.StatusForbidden || !strings.Contains(body, "cross-origin request refused") {
			t.Errorf("%s post: %d %s", name, code, body)
		}
	}
	for name, tok := range map[string]string{"no token": "", "wrong token": "abc"} {
		code, body, _ := b.post("/console/groups", url.Values{"name": {"evil"}, "csrf": {tok}}, nil)
		if code != http.StatusForbidden || !strings.Contains(body, "CSRF token") {
			t.Errorf("%s: %d %s", name, code, body)
		}
	}
	gs, _ := ts.st.ListGroups(context.Background())
	if len(gs) != 1 {
		t.Fatalf("groups after the attacks: %+v", gs)
	}
	// The same form from the console itself works.
	if code, _, _ := b.post("/console/groups", url.Values{"name": {"web"}}, map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": ts.url}); code != 200 {
		t.Fatalf("same-origin post: %d", code)
	}
}

// TestAttackPasswordGuessing: sign-in attempts are throttled per address
// and per user name, and an unknown user takes as long as a wrong password.
func TestAttackPasswordGuessing(t *testing.T) {
	// The server's clock stands still, so no token comes back between
	// guesses however slow the machine is.
	frozen := time.Now()
	ts := startServer(t, Config{Now: func() time.Time { return frozen }})
	b := newBrowser(t, ts)
	throttled := 0
	for i := range 12 {
		code, _, _ := b.post("/console/signin", url.Values{"name": {"admin"}, "password": {"guess-number-" + string(rune('a'+i))}}, nil)
		if code == http.StatusTooManyRequests {
			throttled++
		} else if code != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d", i, code)
		}
	}
	if throttled < 6 {
		t.Fatalf("%d of 12 fast guesses throttled, want at least 6", throttled)
	}
	// Even the right password waits its turn.
	if code, _, _ := b.post("/console/signin", url.Values{"name": {"admin"}, "password": {ts.first.AdminPassword}}, nil); code != http.StatusTooManyRequests {
		t.Fatalf("right password while throttled: %d", code)
	}
}

func TestConsoleRolesAndTokenSignIn(t *testing.T) {
	ts, _ := consoleServer(t)
	viewerTok := ts.newToken(TokenRequest{Kind: "api", Role: "viewer"})
	b := newBrowser(t, ts)
	code, body, _ := b.post("/console/signin", url.Values{"token": {viewerTok}}, nil)
	if code != 200 || !strings.Contains(body, "(viewer)") {
		t.Fatalf("token sign-in: %d %s", code, body)
	}
	b.get("/console/updates/example/BW-1")
	code, body, _ = b.post("/console/updates/example/BW-1/approval", url.Values{"group": {"default"}, "action": {"install"}, "confirm": {"yes"}}, nil)
	if code != http.StatusForbidden || !strings.Contains(body, "needs the approver role") {
		t.Fatalf("viewer approving: %d %s", code, body)
	}
	if code, _, _ := b.get("/console/users"); code != http.StatusForbidden {
		t.Fatalf("viewer on users: %d", code)
	}
	// An admin makes an approver, who signs in with a password.
	ts.admin("POST", "/api/v1/users", UserRequest{Name: "alice", Role: "approver", Password: "correct horse battery"}, http.StatusCreated)
	ts.admin("POST", "/api/v1/users", UserRequest{Name: "bob", Role: "viewer", Password: "short"}, http.StatusBadRequest)
	b2 := newBrowser(t, ts)
	b2.signIn("alice", "correct horse battery")
	b2.get("/console/updates/example/BW-1")
	form := url.Values{"group": {"default"}, "action": {"decline"}, "confirm": {"yes"}}
	if code, body, _ := b2.post("/console/updates/example/BW-1/approval", form, nil); code != 200 {
		t.Fatalf("approver declining: %d %s", code, body)
	}
	if ap := siteApprovals(t, ts, "default").Find("example", "BW-1"); ap == nil || ap.Action != "decline" {
		t.Fatalf("decline not signed: %+v", ap)
	}
	// Signing out ends the session on the server.
	b2.post("/console/signout", nil, nil)
	if _, body, _ := b2.get("/console/"); !strings.Contains(body, `action="/console/signin"`) {
		t.Fatalf("still signed in after sign-out")
	}
}

// TestConsoleComputerPages: the list pages by cursor through the next link
// and counts every match.
func TestConsoleComputerPages(t *testing.T) {
	ts := startServer(t, Config{})
	ctx := context.Background()
	for i := range pageSize + 5 {
		a := &store.Agent{ID: fmt.Sprintf("agt-%03d", i), MachineID: fmt.Sprintf("%032d", i), Hostname: fmt.Sprintf("pc-%03d", i), OS: "debian 12",
			Arch: "amd64", Group: DefaultGroup, CertSerial: "s", Status: store.AgentActive, EnrolledAt: time.Now(), LastSeen: time.Now()}
		if err := ts.st.CreateAgent(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	b := newBrowser(t, ts)
	b.signIn("admin", ts.first.AdminPassword)
	_, body, _ := b.get("/console/computers?group=default")
	if !strings.Contains(body, fmt.Sprintf("%d computers match", pageSize+5)) || !strings.Contains(body, "pc-049") || strings.Contains(body, "pc-050") {
		t.Fatalf("first page:\n%s", body)
	}
	m := regexp.MustCompile(`rel="next" href="([^"]+)"`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no next link:\n%s", body)
	}
	_, body, _ = b.get(html.UnescapeString(m[1]))
	if !strings.Contains(body, "pc-050") || !strings.Contains(body, "pc-054") || strings.Contains(body, "pc-049") || strings.Contains(body, `rel="next"`) {
		t.Fatalf("second page (%s):\n%s", m[1], body)
	}
}

// TestConsoleTokensAndSync: an admin makes an enrollment token in the
// console (its secret shown once) that enrolls a machine, revokes it, and
// sees and starts syncs.
func TestConsoleTokensAndSync(t *testing.T) {
	ts, _ := consoleServer(t)
	b := newBrowser(t, ts)
	b.signIn("admin", ts.first.AdminPassword)
	b.get("/console/tokens")
	code, body, _ := b.post("/console/tokens", url.Values{"group": {"default"}, "max_uses": {"1"}, "days": {"2"}, "name": {"lab"}}, nil)
	m := regexp.MustCompile(`<code>(bwe_[a-z2-7]{52})</code>`).FindStringSubmatch(body)
	if code != 200 || m == nil {
		t.Fatalf("create token: %d %s", code, body)
	}
	ts.enroll(m[1], machineA, "")
	if code, body, _ := b.post("/console/tokens", url.Values{"group": {"default"}, "max_uses": {"-1"}, "days": {"2"}}, nil); code != 400 || !strings.Contains(body, "use 0 (unlimited) to 1000000") {
		t.Fatalf("bad uses: %d %s", code, body)
	}
	toks, _ := ts.st.ListTokens(context.Background(), "enroll")
	var id string
	for _, tk := range toks {
		if tk.Name == "lab" {
			id = tk.ID
		}
	}
	if code, _, _ := b.post("/console/tokens/"+id+"/revoke", nil, nil); code != 200 {
		t.Fatalf("revoke: %d", code)
	}
	if tk, _ := ts.st.TokenByHash(context.Background(), HashToken(m[1])); tk == nil || tk.RevokedAt == nil {
		t.Fatalf("token not revoked: %+v", tk)
	}
	_, body, _ = b.get("/console/sync")
	if !strings.Contains(body, "example") || !strings.Contains(body, "manual") {
		t.Fatalf("sync page:\n%s", body)
	}
	if code, _, _ := b.post("/console/sync", nil, nil); code != 200 {
		t.Fatalf("sync now: %d", code)
	}
	es, _ := ts.st.ListAudit(context.Background(), 0, 5)
	if len(es) < 3 || es[0].Action != "sync.queue" || es[1].Action != "token.revoke" || es[2].Action != "token.create" {
		t.Fatalf("audit = %+v", es)
	}
}
