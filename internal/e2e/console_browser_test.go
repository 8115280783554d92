package e2e

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/bulwarkhq/bulwark/internal/debtest"
	"github.com/bulwarkhq/bulwark/internal/pki"
	"github.com/bulwarkhq/bulwark/internal/server"
	"github.com/bulwarkhq/bulwark/internal/tuf"
)

// chromiumPath finds Debian's chromium (scripts/setup.d/chromium.sh installs
// it). In CI (CI=true) a missing browser fails the test; elsewhere it skips.
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("BULWARK_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed: scripts/setup.d/chromium.sh installs it (apt_need chromium)")
	}
	t.Skip("chromium is not installed; scripts/test installs it (in CI this test fails instead)")
	return ""
}

// artifactDir is where screenshots go: $BULWARK_TEST_ARTIFACTS/console, or
// a directory under the system temp dir that the test names in its log and
// leaves for a reviewer.
func artifactDir(t *testing.T) string {
	t.Helper()
	var dir string
	if base := os.Getenv("BULWARK_TEST_ARTIFACTS"); base != "" {
		dir = filepath.Join(base, "console")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	} else {
		var err error
		if dir, err = os.MkdirTemp("", "bulwark-console-screenshots-"); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("console screenshots: %s", dir)
	return dir
}

// tab is one browser tab on the console, recording every request it makes.
type tab struct {
	t      *testing.T
	ctx    context.Context
	base   string
	shots  string
	mu     sync.Mutex
	urls   []string
	record bool
}

func (b *tab) do(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, actions...); err != nil {
		b.t.Fatal(err)
	}
}

func eval[T any](b *tab, js string) T {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
	if err != nil {
		b.t.Fatalf("%s: %v", js, err)
	}
	return v
}

func (b *tab) open(path string) {
	b.t.Helper()
	b.do(chromedp.Navigate(b.base + path))
	b.loaded()
}

// loaded waits until a new document has loaded (the marker set on the old
// one is gone).
func (b *tab) loaded() {
	b.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		ok, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](`!window.__bwOld && document.readyState === "complete"`))
		if err == nil && ok {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.t.Fatal("page did not load within 30 s")
}

// submit clicks a submit button and waits for the page it leads to.
func (b *tab) submit(sel string) {
	b.t.Helper()
	eval[bool](b, `window.__bwOld = true`)
	b.do(chromedp.Click(chromedp.CSS(sel)))
	b.loaded()
}

func (b *tab) text() string {
	return eval[string](b, `document.body.innerText`)
}

func (b *tab) want(what string, wants ...string) {
	b.t.Helper()
	txt := b.text()
	for _, w := range wants {
		if !strings.Contains(txt, w) {
			b.t.Fatalf("%s: page lacks %q:\n%s", what, w, txt)
		}
	}
}

// screenshot saves the whole page as NAME.png.
func (b *tab) screenshot(name string) {
	b.t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(b.shots, name+".png"), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// unlabelled lists the page's form controls that no label names.
func (b *tab) checkLabels(page string) {
	b.t.Helper()
	bad := eval[[]string](b, `Array.from(document.querySelectorAll("input, select, textarea"))
		.filter(e => e.type !== "hidden" && e.labels.length === 0 && !e.getAttribute("aria-label"))
		.map(e => e.outerHTML)`)
	if len(bad) > 0 {
		b.t.Errorf("%s: form controls without a label: %v", page, bad)
	}
}

// openBrowser starts a headless Chromium that trusts exactly the server's
// certificate (by its key) and returns a tab on base that records every
// request it makes.
func openBrowser(t *testing.T, chromium string, srv *server.Server, base string) *tab {
	t.Helper()
	// The browser trusts exactly the server's certificate, by its key.
	leaf, err := x509.ParseCertificate(srv.ServerCertificate().Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	spki := sha256.Sum256(leaf.RawSubjectPublicKeyInfo)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromium),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("ignore-certificate-errors-spki-list", base64.StdEncoding.EncodeToString(spki[:])),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	t.Cleanup(cancelAlloc)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(cancelBrowser)
	b := &tab{t: t, ctx: bctx, base: base, shots: artifactDir(t), record: true}
	if err := chromedp.Do(bctx); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Listen(bctx, func(ev any) {
		if e, ok := ev.(*network.EventRequestWillBeSent); ok {
			b.mu.Lock()
			if b.record {
				b.urls = append(b.urls, e.Request.URL)
			}
			b.mu.Unlock()
		}
	}); err != nil {
		t.Fatal(err)
	}

	return b
}

// signIn signs in as the first admin.
func (b *tab) signIn(password string) {
	b.t.Helper()
	b.open("/console/signin")
	b.do(chromedp.SetValue(chromedp.CSS("#name"), "admin"), chromedp.SetValue(chromedp.CSS("#password"), password))
	b.submit("form.signin button")
	b.want("dashboard after sign-in", "Dashboard", "admin (admin)")
}

// TestConsoleInBrowser is the console issue's "done when" in a real
// browser: sign in, make a group, approve an update for it with the
// confirmation that counts machines, watch a real agent's check-ins move it
// from needed to installed (a real dpkg install into the machine's root),
// decline another, export CSV; every page's controls are labelled, every
// request the browser makes goes to the server's own origin, and a
// cross-site form post is refused. Screenshots of every page are kept.
func TestConsoleInBrowser(t *testing.T) {
	chromium := chromiumPath(t)
	ctx := context.Background()
	vendorDir := filepath.Join(t.TempDir(), "vendor")
	vr, err := tuf.Init(vendorDir, tuf.InitOptions{Name: "debian", BinBits: 4}, tuf.Options{})
	if err != nil {
		t.Fatal(err)
	}
	publishDeb(t, vr, "BW-1", debtest.Package{Name: "libfoo", Version: "1.1", Files: map[string]string{"/usr/lib/libfoo.txt": "1.1\n"}}, "reboot: never\n")
	publishDeb(t, vr, "BW-2", debtest.Package{Name: "bar", Version: "2.0", Files: map[string]string{"/usr/bin/bar-version": "2.0\n"}}, "reboot: never\n")
	vr.Close()

	srv, first := serve(t, server.Config{Vendors: []server.HostedVendor{{Name: "debian", Dir: vendorDir}}})
	base := srv.URL()
	if _, err := srv.SyncAll(ctx, "", "manual"); err != nil {
		t.Fatal(err)
	}
	tc, err := pki.PinnedClientConfig(srv.CAFingerprint())
	if err != nil {
		t.Fatal(err)
	}
	adm := admin{t: t, url: base, token: first.AdminToken, hc: &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}}

	b := openBrowser(t, chromium, srv, base)

	// Sign in as the first admin.
	b.open("/console/")
	b.want("sign-in page", "User name", "Password")
	b.checkLabels("sign-in")
	b.screenshot("01-signin")
	b.do(chromedp.SetValue(chromedp.CSS("#name"), "admin"), chromedp.SetValue(chromedp.CSS("#password"), first.AdminPassword))
	b.submit("form.signin button")
	b.want("dashboard after sign-in", "Dashboard", "admin (admin)", "computers")

	// Make the group web.
	b.open("/console/groups")
	b.do(chromedp.SetValue(chromedp.CSS("#g-name"), "web"))
	b.submit("#g-name ~ button")
	b.want("groups", "web")
	b.checkLabels("groups")
	b.screenshot("02-groups")

	// A real machine enrolls into web.
	var tok struct{ Token string }
	json.Unmarshal(adm.do("POST", "/api/v1/tokens", map[string]any{"kind": "enroll", "group": "web", "max_uses": 1}, http.StatusCreated), &tok)
	siteRoot, err := srv.SiteRootFingerprint()
	if err != nil {
		t.Fatal(err)
	}
	m := newMachine(t, base, srv.CAFingerprint(), siteRoot, tok.Token, "web-01", "0123456789abcdef0123456789abcdef")
	m.checkIn("notify")

	// Approve BW-1 for web: the confirmation counts the machines it touches.
	b.open("/console/updates")
	b.want("updates", "debian/BW-1", "debian/BW-2")
	b.checkLabels("updates")
	b.screenshot("03-updates")
	b.open("/console/updates/debian/BW-1")
	b.checkLabels("update")
	b.screenshot("04-update")
	b.do(chromedp.SetValue(chromedp.CSS("#a-web"), "install"))
	b.submit(`form:has(#a-web) button`)
	b.want("confirmation", "install debian/BW-1", "This touches 1 computers in web")
	b.screenshot("05-confirm")
	b.submit(`form button[type=submit]:not(.signout button)`)
	b.want("update after approval", "install")

	// The machine checks in without installing (notify): it reports BW-1 needed.
	m.checkIn("notify")
	b.open("/console/")
	b.want("dashboard", "1\nmissing critical updates")
	b.screenshot("06-dashboard")
	b.open("/console/computers?missing=critical")
	b.want("computers missing critical", "web-01", "1 computers match")
	b.checkLabels("computers")
	b.screenshot("07-computers")
	b.open("/console/computers/" + m.id)
	b.want("computer needing BW-1", "critical (1)", "needed")
	b.checkLabels("computer")
	b.screenshot("08-computer-needed")

	// Now it installs (auto): a real dpkg install into its root.
	m.checkIn("auto")
	if got, err := os.ReadFile(filepath.Join(m.root, "usr/lib/libfoo.txt")); err != nil || string(got) != "1.1\n" {
		t.Fatalf("libfoo not installed: %q %v", got, err)
	}
	b.open("/console/computers/" + m.id)
	b.want("computer after install", "installed", "Nothing missing")
	b.screenshot("09-computer-installed")

	// Decline BW-2 for web; the next check-in installs nothing of it.
	b.open("/console/updates/debian/BW-2")
	b.do(chromedp.SetValue(chromedp.CSS("#a-web"), "decline"))
	b.submit(`form:has(#a-web) button`)
	b.want("decline confirmation", "decline debian/BW-2")
	b.submit(`form button[type=submit]:not(.signout button)`)
	m.checkIn("auto")
	if _, err := os.Stat(filepath.Join(m.root, "usr/bin/bar-version")); err == nil {
		t.Fatal("a declined update was installed")
	}
	b.open("/console/computers/" + m.id)
	b.want("computer after decline", "declined")

	// Export compliance per computer as CSV, with the browser's session.
	csv := eval[string](b, `fetch("/console/export/computers.csv").then(r => r.text())`)
	if !strings.Contains(csv, "hostname") || !strings.Contains(csv, m.id+",web-01,web,debian 12,active,") {
		t.Fatalf("CSV export:\n%s", csv)
	}
	b.open("/console/audit")
	b.want("audit", "approval.install", "approval.decline", "group.create", "signin", "127.0.0.1")
	b.screenshot("10-audit")
	b.open("/console/users")
	b.checkLabels("users")
	b.screenshot("11-users")
	b.open("/console/tokens")
	b.checkLabels("tokens")
	b.screenshot("13-tokens")
	b.open("/console/sync")
	b.want("sync", "debian", "manual")
	b.checkLabels("sync")
	b.screenshot("14-sync")

	// Every request went to the console's own origin.
	b.mu.Lock()
	b.record = false
	urls := b.urls
	b.mu.Unlock()
	if len(urls) < 15 {
		t.Fatalf("only %d requests recorded: %v", len(urls), urls)
	}
	for _, u := range urls {
		// data: URLs are the browser's own built-in images (the calendar
		// icon of a date field): nothing leaves the machine for them.
		if !strings.HasPrefix(u, base+"/") && !strings.HasPrefix(u, "data:") {
			t.Errorf("the browser requested %s, outside %s", u, base)
		}
	}

	// TestAttack: a page on another site posts a form to the console in the
	// signed-in browser. The server refuses it and nothing changes.
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<form id="f" method="post" action="%s/console/groups"><input name="name" value="evil"><input name="csrf" value="guess"></form>
<script>document.getElementById("f").submit()</script>`, base)
	}))
	defer evil.Close()
	eval[bool](b, `window.__bwOld = true`)
	b.do(chromedp.Navigate(strings.Replace(evil.URL, "127.0.0.1", "localhost", 1)))
	deadline := time.Now().Add(20 * time.Second)
	for {
		loc, _ := chromedp.Run(b.ctx, chromedp.Location())
		if strings.HasPrefix(loc, base) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the cross-site form never reached the console (at %s)", loc)
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.loaded()
	txt := b.text()
	if !strings.Contains(txt, "cross-origin request refused") {
		t.Fatalf("cross-site post answered:\n%s", txt)
	}
	b.screenshot("12-cross-site-refused")
	var groups struct{ Groups []struct{ Name string } }
	json.Unmarshal(adm.do("GET", "/api/v1/groups", nil, http.StatusOK), &groups)
	for _, g := range groups.Groups {
		if g.Name == "evil" {
			t.Fatal("the cross-site form post created a group")
		}
	}
}
