package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/agent"
	"github.com/bulwarkhq/bulwark/internal/debtest"
	"github.com/bulwarkhq/bulwark/internal/install"
	"github.com/bulwarkhq/bulwark/internal/pki"
	"github.com/bulwarkhq/bulwark/internal/server"
	"github.com/bulwarkhq/bulwark/internal/server/servertest"
	"github.com/bulwarkhq/bulwark/internal/tuf"
	"github.com/bulwarkhq/bulwark/internal/wire"
)

// siteServer is an update server on a fixed loopback address that a test
// can stop and start again on the same data directory, as an attacker who
// owns the host would.
type siteServer struct {
	t       *testing.T
	dataDir string
	rootKey string // the site root key, written outside the data directory
	addr    string
	ln      *net.TCPListener // addr's, held from newSiteServer to the end of the test
	srv     *server.Server
	first   *server.FirstStart
	adm     admin
	stop    func()
}

func newSiteServer(t *testing.T) *siteServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return &siteServer{t: t, dataDir: filepath.Join(t.TempDir(), "data"), rootKey: filepath.Join(t.TempDir(), "site-root.key"), addr: ln.Addr().String(), ln: ln.(*net.TCPListener)}
}

// takeAddress makes s serve, from its next start, on other's address.
func (s *siteServer) takeAddress(other *siteServer) { s.addr, s.ln = other.addr, other.ln }

// heldListener is the site's listener for one start: closing it stops
// Accept but keeps the port, held by the test until it ends, so a restart
// never races another process for it.
type heldListener struct {
	*net.TCPListener
	closed atomic.Bool
}

func holdListener(ln *net.TCPListener) (*heldListener, error) {
	if err := ln.SetDeadline(time.Time{}); err != nil { // the previous start's Close set one
		return nil, err
	}
	return &heldListener{TCPListener: ln}, nil
}

func (l *heldListener) Accept() (net.Conn, error) {
	c, err := l.TCPListener.Accept()
	if l.closed.Load() {
		if err == nil {
			c.Close()
		}
		return nil, net.ErrClosed
	}
	return c, err
}

func (l *heldListener) Close() error {
	if l.closed.CompareAndSwap(false, true) {
		return l.TCPListener.SetDeadline(time.Unix(1, 0)) // wakes Accept
	}
	return nil
}

// start opens the server on its data directory with cfg's vendors (and
// whatever else cfg sets) and serves until stopped.
func (s *siteServer) start(cfg server.Config) {
	t := s.t
	t.Helper()
	cfg.DataDir, cfg.PublicURL = s.dataDir, "https://"+s.addr
	if s.first == nil {
		cfg.SiteRootKeyOut = s.rootKey
	}
	cfg.Logger = slog.New(slog.DiscardHandler)
	srv, first, err := server.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if first != nil {
		s.first = first
	}
	ln, err := holdListener(s.ln)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done, ready := make(chan error, 1), make(chan struct{})
	go func() { done <- srv.Serve(ctx, ln, nil, func() { close(ready) }) }()
	<-ready
	s.srv = srv
	s.stop = func() { cancel(); <-done; srv.Close() }
	t.Cleanup(s.shutdown)
	servertest.WaitStartSync(t, srv)
	tc, err := pki.PinnedClientConfig(srv.CAFingerprint())
	if err != nil {
		t.Fatal(err)
	}
	s.adm = admin{t: t, url: srv.URL(), token: s.first.AdminToken, hc: &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}}
}

func (s *siteServer) shutdown() {
	if s.stop != nil {
		s.stop()
		s.stop = nil
	}
}

// enrollToken makes a one-use enrollment token for group, creating it.
func (s *siteServer) enrollToken(group string) string {
	s.adm.do("POST", "/api/v1/groups", map[string]string{"name": group}, http.StatusCreated)
	var tok struct{ Token string }
	json.Unmarshal(s.adm.do("POST", "/api/v1/tokens", map[string]any{"kind": "enroll", "group": group, "max_uses": 1}, http.StatusCreated), &tok)
	return tok.Token
}

// fleetHost is an agent's directory root and state.
type fleetHost struct {
	t       *testing.T
	id      string // /etc/machine-id
	root    string
	state   string
	bootID  string
	reboots string
}

func newFleetHost(t *testing.T) *fleetHost {
	id := make([]byte, 16)
	rand.Read(id)
	m := &fleetHost{t: t, id: hex.EncodeToString(id), root: filepath.Join(t.TempDir(), "root"), state: filepath.Join(t.TempDir(), "state")}
	if err := install.InitRoot(m.root); err != nil {
		t.Fatal(err)
	}
	debtest.AddShell(t, m.root) // maintainer scripts run chrooted in the root

	for f, c := range map[string]string{"etc/os-release": "ID=debian\nVERSION_ID=\"12\"\n", "etc/machine-id": m.id + "\n", "etc/hostname": "web-01\n"} {
		os.MkdirAll(filepath.Join(m.root, filepath.Dir(f)), 0o755)
		os.WriteFile(filepath.Join(m.root, f), []byte(c), 0o644)
	}
	m.bootID = filepath.Join(t.TempDir(), "boot_id")
	os.WriteFile(m.bootID, []byte("boot-1\n"), 0o644)
	m.reboots = filepath.Join(t.TempDir(), "reboots")
	return m
}

func (m *fleetHost) facts() wire.Facts {
	return wire.Facts{MachineID: m.id, Hostname: "web-01", OS: "debian 12", Arch: "amd64"}
}

// enroll joins the machine to s with the command s printed at first start.
func (m *fleetHost) enroll(s *siteServer, token string, pins map[string]string) (*agent.Enrollment, error) {
	siteRoot, err := s.srv.SiteRootFingerprint()
	if err != nil {
		m.t.Fatal(err)
	}
	return agent.Enroll(context.Background(), agent.EnrollOptions{Server: s.srv.URL(), Token: token, CAFingerprint: s.srv.CAFingerprint(),
		SiteRootFingerprint: siteRoot, VendorPins: pins, StateDir: m.state, Facts: m.facts()})
}

// build builds the agent as `bulwark agent run` does.
func (m *fleetHost) build(s *siteServer) (*agent.Daemon, *agent.ServerClient, func()) {
	t := m.t
	t.Helper()
	settings, err := agent.FileConfig{Server: s.srv.URL(), CAFingerprint: s.srv.CAFingerprint(), StateDir: m.state, Root: m.root, Mode: "auto",
		AutoInstallSeverity: "critical", RebootCommand: []string{"sh", "-c", "echo reboot >> " + m.reboots}, BootIDPath: m.bootID}.Check()
	if err != nil {
		t.Fatal(err)
	}
	d, sc, closeAgent, err := agent.Build(settings, "amd64", "test", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return d, sc, closeAgent
}

// checkIn builds the agent and runs one check-in the way its schedule
// does.
func (m *fleetHost) checkIn(s *siteServer) (*agent.Daemon, error) {
	d, sc, done := m.build(s)
	defer done()
	return d, d.CheckInWith(context.Background(), sc)
}

func (m *fleetHost) record(d *agent.Daemon, key string) agent.UpdateRecord {
	for _, r := range d.Updates() {
		if r.Key == key {
			return r
		}
	}
	return agent.UpdateRecord{}
}

// newVendorRepo makes a vendor repository named name with one update id
// whose .deb is p.
func newVendorRepo(t *testing.T, name, id string, p debtest.Package) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	r, err := tuf.Init(dir, tuf.InitOptions{Name: name, BinBits: 2}, tuf.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	publishDeb(t, r, id, p, "reboot: never\n")
	return dir
}

// evilPackage is the attacker's .deb: its postinst runs a command as root.
// Here the command leaves a mark in the machine's root.
var evilPackage = debtest.Package{Name: "evil", Version: "1.0", Files: map[string]string{"/usr/share/doc/evil/README": "evil\n"},
	Postinst: `touch "$DPKG_ROOT/pwned"`}

// The attack review's finding, end to end. The attacker owns the update
// server's host: its data directory (site keys, CA, admin token), but no
// vendor key. It makes its own vendor repository with a package whose
// postinst runs a command, restarts the server with that repository as a
// vendor, and approves it with a deadline already passed. An agent that
// enrolled while the server was honest must refuse the update, naming the
// untrusted vendor, and still install the legitimate vendor's approved
// update in the same pass.
func TestAttackCompromisedServerAddsVendor(t *testing.T) {
	debianDir := newVendorRepo(t, "debian", "BW-1", debtest.Package{Name: "libfoo", Version: "1.1", Files: map[string]string{"/usr/lib/libfoo.txt": "1.1\n"}})
	s := newSiteServer(t)
	s.start(server.Config{Vendors: []server.HostedVendor{{Name: "debian", Dir: debianDir}}})
	m := newFleetHost(t)
	if _, err := m.enroll(s, s.enrollToken("web"), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := m.checkIn(s); err != nil {
		t.Fatal(err)
	}

	// The attacker: its own vendor repository, the same data directory.
	evilDir := newVendorRepo(t, "evil", "EVIL-1", evilPackage)
	s.shutdown()
	s.start(server.Config{Vendors: []server.HostedVendor{{Name: "debian", Dir: debianDir}, {Name: "evil", Dir: evilDir}}})
	past := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	s.adm.do("PUT", "/api/v1/groups/web/approvals/evil/EVIL-1", map[string]any{"action": "install", "deadline": past}, http.StatusOK)
	s.adm.do("PUT", "/api/v1/groups/web/approvals/debian/BW-1", map[string]any{"action": "install"}, http.StatusOK)

	d, err := m.checkIn(s)
	if err != nil {
		t.Logf("check-in: %v", err)
	}
	if _, err := os.Stat(filepath.Join(m.root, "pwned")); err == nil {
		t.Fatal("the attack worked: the site-added vendor's postinst ran on the agent")
	}
	evil := m.record(d, "evil/EVIL-1")
	if evil.State != agent.StateFailed || !strings.Contains(evil.Reason, `"evil"`) {
		t.Errorf("evil/EVIL-1: %s %q; want failed with a reason naming vendor \"evil\"", evil.State, evil.Reason)
	}
	if got, err := os.ReadFile(filepath.Join(m.root, "usr/lib/libfoo.txt")); err != nil || string(got) != "1.1\n" {
		t.Errorf("the legitimate vendor's approved update did not install in the same pass: %q %v (debian/BW-1: %+v)", got, err, m.record(d, "debian/BW-1"))
	}
}
