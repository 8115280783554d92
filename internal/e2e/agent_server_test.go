package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bulwarkhq/bulwark/internal/agent"
	"github.com/bulwarkhq/bulwark/internal/debtest"
	"github.com/bulwarkhq/bulwark/internal/pki"
	"github.com/bulwarkhq/bulwark/internal/server"
	"github.com/bulwarkhq/bulwark/internal/server/servertest"
	"github.com/bulwarkhq/bulwark/internal/tuf"
	"github.com/bulwarkhq/bulwark/internal/wire"
)

// publishDeb builds a real .deb and publishes it into the vendor repository.
func publishDeb(t *testing.T, r *tuf.Repository, id string, p debtest.Package, extra string) {
	t.Helper()
	dir := t.TempDir()
	deb := debtest.Build(t, dir, p)
	y := filepath.Join(dir, id+".yaml")
	os.WriteFile(y, []byte(fmt.Sprintf("id: %s\ntitle: %s %s\nproduct: debian-12\nclassification: security\nseverity: critical\nreleased: 2026-11-20\ninstaller: {type: deb}\npayloads: [{file: %s}]\n%s",
		id, p.Name, p.Version, filepath.Base(deb), extra)), 0o644)
	if _, err := r.Publish(context.Background(), y, tuf.PublishOptions{}); err != nil {
		t.Fatal(err)
	}
}

type admin struct {
	t     *testing.T
	url   string
	token string
	hc    *http.Client
}

func (a admin) do(method, path string, body any, want int) []byte {
	a.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, a.url+path, rd)
	req.Header.Set("Authorization", "Bearer "+a.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.hc.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		a.t.Fatalf("%s %s: %d %s, want %d", method, path, resp.StatusCode, b, want)
	}
	return b
}

// The agent issue's "done when", as a test: a server publishes three real
// .deb updates (one a rollup superseding another, two needing a reboot), an
// admin approves them for a group, an agent enrolls with a directory root,
// and one cycle installs the right two packages with exactly one reboot
// call; the server then shows every state.
func TestServerAgentInstallsApprovedDebs(t *testing.T) {
	ctx := context.Background()
	vendorDir := filepath.Join(t.TempDir(), "vendor")
	vr, err := tuf.Init(vendorDir, tuf.InitOptions{Name: "debian", BinBits: 4}, tuf.Options{})
	if err != nil {
		t.Fatal(err)
	}
	applies := "applies_to:\n  - not: {deb: {package: libfoo, version_ge: \"1.1\"}}\n"
	publishDeb(t, vr, "BW-1", debtest.Package{Name: "libfoo", Version: "1.1", Files: map[string]string{"/usr/lib/libfoo.txt": "1.1\n"}}, "reboot: required\n"+applies)
	publishDeb(t, vr, "BW-2", debtest.Package{Name: "libfoo", Version: "1.2", Files: map[string]string{"/usr/lib/libfoo.txt": "1.2\n"}}, "reboot: required\nsupersedes: [BW-1]\n"+applies)
	publishDeb(t, vr, "BW-3", debtest.Package{Name: "bar", Version: "2.0", Files: map[string]string{"/usr/bin/bar-version": "2.0\n"}}, "reboot: never\n")
	vr.Close()

	srv, adm, tok := startServer(t, vendorDir, "BW-1", "BW-2", "BW-3")

	// The agent's machine: a directory root with its own dpkg database.
	root := debianRoot(t, "web-01", "0123456789abcdef0123456789abcdef")
	e, settings, reboots, bootID := enroll(t, srv, tok, root, "auto")
	d, sc, closeAgent, err := agent.Build(settings, "amd64", "test", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { closeAgent() }()
	info, _, err := sc.CheckIn(ctx)
	if err != nil || info.Group != "web" || !d.KnowsVendors(info.Vendors) {
		t.Fatalf("check-in: %+v %v", info, err)
	}
	// The server also lists its vendors with their roots, for agents that
	// enrolled before a vendor was synced.
	refs, err := sc.Vendors(ctx)
	if err != nil || len(refs) != 1 || refs[0].Name != "debian" || !bytes.Equal(refs[0].Root, mustRead(t, filepath.Join(vendorDir, "metadata", "root.json"))) {
		t.Fatalf("vendors: %+v %v", refs, err)
	}
	if err := d.CheckIn(ctx); err != nil {
		t.Fatal(err)
	}

	b, _ := os.ReadFile(reboots)
	if n := strings.Count(string(b), "reboot"); n != 1 {
		t.Fatalf("reboot command called %d times, want 1", n)
	}
	for f, want := range map[string]string{"usr/lib/libfoo.txt": "1.2\n", "usr/bin/bar-version": "2.0\n"} {
		if got, err := os.ReadFile(filepath.Join(root, f)); err != nil || string(got) != want {
			t.Fatalf("%s = %q, %v; want %q", f, got, err, want)
		}
	}
	var comp struct {
		Updates []struct{ Vendor, ID, State string } `json:"updates"`
	}
	json.Unmarshal(adm.do("GET", "/api/v1/computers/"+e.AgentID, nil, http.StatusOK), &comp)
	got := map[string]string{}
	for _, u := range comp.Updates {
		got[u.Vendor+"/"+u.ID] = u.State
	}
	want := map[string]string{"debian/BW-1": "superseded", "debian/BW-2": "installed-pending-reboot", "debian/BW-3": "installed"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("server shows %s %q, want %q (all: %v)", k, got[k], v, got)
		}
	}

	// A check-in in the same boot: still pending, and no second reboot.
	if err := d.CheckIn(ctx); err != nil {
		t.Fatal(err)
	}
	json.Unmarshal(adm.do("GET", "/api/v1/computers/"+e.AgentID, nil, http.StatusOK), &comp)
	for _, u := range comp.Updates {
		if u.ID == "BW-2" && u.State != "installed-pending-reboot" {
			t.Fatalf("a check-in without a reboot: the server shows BW-2 %s, want installed-pending-reboot", u.State)
		}
	}
	if b, _ := os.ReadFile(reboots); strings.Count(string(b), "reboot") != 1 {
		t.Fatalf("reboot command called %d times after a second check-in, want 1", strings.Count(string(b), "reboot"))
	}

	// The machine reboots; the next check-in reports the rollup installed.
	os.WriteFile(bootID, []byte("boot-2\n"), 0o644)
	closeAgent()
	d, _, closeAgent, err = agent.Build(settings, "amd64", "test", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.CheckIn(ctx); err != nil {
		t.Fatal(err)
	}
	json.Unmarshal(adm.do("GET", "/api/v1/computers/"+e.AgentID, nil, http.StatusOK), &comp)
	for _, u := range comp.Updates {
		if u.ID == "BW-2" && u.State != "installed" {
			t.Fatalf("after the reboot the server shows BW-2 %s, want installed", u.State)
		}
	}
}

// startServer starts a server on loopback hosting the vendor repository in
// vendorDir, makes group "web" with the updates ids approved for install,
// and returns an admin client and a one-use enrollment token for the group.
// serve serves cfg (in a temporary data directory, on a loopback port)
// until the test ends.
func serve(t *testing.T, cfg server.Config) (*server.Server, *server.FirstStart) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.DataDir, cfg.PublicURL, cfg.Logger = filepath.Join(t.TempDir(), "data"), "https://"+ln.Addr().String(), slog.New(slog.DiscardHandler)
	srv, first, err := server.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(context.Background())
	done, ready := make(chan error, 1), make(chan struct{})
	go func() { done <- srv.Serve(sctx, ln, nil, func() { close(ready) }) }()
	<-ready
	t.Cleanup(func() { stop(); <-done; srv.Close() })
	servertest.WaitStartSync(t, srv)
	return srv, first
}

func startServer(t *testing.T, vendorDir string, ids ...string) (*server.Server, admin, string) {
	t.Helper()
	srv, adm, tok, _ := startServerFirst(t, vendorDir, ids...)
	return srv, adm, tok
}

// startServerFirst is startServer that also returns what the first start
// made (the console's admin password).
func startServerFirst(t *testing.T, vendorDir string, ids ...string) (*server.Server, admin, string, *server.FirstStart) {
	t.Helper()
	srv, first := serve(t, server.Config{Vendors: []server.HostedVendor{{Name: "debian", Dir: vendorDir}}})
	tc, err := pki.PinnedClientConfig(srv.CAFingerprint())
	if err != nil {
		t.Fatal(err)
	}
	adm := admin{t: t, url: srv.URL(), token: first.AdminToken, hc: &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}}
	adm.do("POST", "/api/v1/groups", map[string]string{"name": "web"}, http.StatusCreated)
	var tok struct{ Token string }
	json.Unmarshal(adm.do("POST", "/api/v1/tokens", map[string]any{"kind": "enroll", "group": "web", "max_uses": 1}, http.StatusCreated), &tok)
	for _, id := range ids {
		adm.do("PUT", "/api/v1/groups/web/approvals/debian/"+id, map[string]any{"action": "install"}, http.StatusOK)
	}
	return srv, adm, tok.Token, first
}

// enroll enrolls an agent for root with token and returns its enrollment,
// its settings (mode, a reboot command that appends "reboot" to the file
// reboots, a boot id file at bootID holding "boot-1").
func enroll(t *testing.T, srv *server.Server, token, root, mode string) (e *agent.Enrollment, settings *agent.Settings, reboots, bootID string) {
	t.Helper()
	state := filepath.Join(t.TempDir(), "state")
	reboots = filepath.Join(t.TempDir(), "reboots")
	bootID = filepath.Join(state+"-boot", "boot_id")
	os.MkdirAll(filepath.Dir(bootID), 0o755)
	os.WriteFile(bootID, []byte("boot-1\n"), 0o644)
	siteRoot, err := srv.SiteRootFingerprint()
	if err != nil {
		t.Fatal(err)
	}
	e, err = agent.Enroll(context.Background(), agent.EnrollOptions{Server: srv.URL(), Token: token, CAFingerprint: srv.CAFingerprint(), SiteRootFingerprint: siteRoot, StateDir: state,
		Facts: wire.Facts{MachineID: "0123456789abcdef0123456789abcdef", Hostname: "web-01", OS: "debian 12", Arch: "amd64"}})
	if err != nil {
		t.Fatal(err)
	}
	settings, err = agent.FileConfig{Server: srv.URL(), CAFingerprint: srv.CAFingerprint(), StateDir: state, Root: root, Mode: mode,
		AutoInstallSeverity: "important", RebootCommand: []string{"sh", "-c", "echo reboot >> " + reboots}, BootIDPath: bootID}.Check()
	if err != nil {
		t.Fatal(err)
	}
	return e, settings, reboots, bootID
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
