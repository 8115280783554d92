package e2e

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/bulwarkhq/bulwark/internal/agent"
	"github.com/bulwarkhq/bulwark/internal/debtest"
	"github.com/bulwarkhq/bulwark/internal/pki"
	"github.com/bulwarkhq/bulwark/internal/server"
	"github.com/bulwarkhq/bulwark/internal/tuf"
)

var libfoo = debtest.Package{Name: "libfoo", Version: "1.1", Files: map[string]string{"/usr/lib/libfoo.txt": "1.1\n"}}

// honestSite is an update server first started by its admin with the
// debian vendor, its site root key written off the server, and a machine
// enrolled with the command it printed.
func honestSite(t *testing.T) (s *siteServer, debianDir string, m *fleetHost) {
	t.Helper()
	debianDir = newVendorRepo(t, "debian", "BW-1", libfoo)
	s = newSiteServer(t)
	s.start(server.Config{Vendors: []server.HostedVendor{{Name: "debian", Dir: debianDir}}})
	m = newFleetHost(t)
	if _, err := m.enroll(s, s.enrollToken("web"), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := m.checkIn(s); err != nil {
		t.Fatal(err)
	}
	return s, debianDir, m
}

func (m *fleetHost) pwned() bool {
	_, err := os.Stat(filepath.Join(m.root, "pwned"))
	return err == nil
}

func (m *fleetHost) hasLibfoo() bool {
	b, err := os.ReadFile(filepath.Join(m.root, "usr/lib/libfoo.txt"))
	return err == nil && string(b) == "1.1\n"
}

func pastDeadline() string { return time.Now().Add(-time.Hour).UTC().Format(time.RFC3339) }

// forgeSiteRoot is what an attacker with the server's disk can make: the
// next site root, listing its vendor, signed with every key in the data
// directory (the online ones: the root key is not there).
func forgeSiteRoot(t *testing.T, dataDir, vendor, fp string) []byte {
	t.Helper()
	meta := filepath.Join(dataDir, "site", "metadata")
	root, err := metadata.Root().FromFile(filepath.Join(meta, "root.json"))
	if err != nil {
		t.Fatal(err)
	}
	list, _ := root.Signed.UnrecognizedFields["bulwark_vendors"].(map[string]any)
	list[vendor] = fp
	root.Signed.Version++
	root.ClearSignatures()
	keys, _ := filepath.Glob(filepath.Join(dataDir, "site", "keys", "*.key"))
	if len(keys) != 3 {
		t.Fatalf("keys on the server: %v, want the three online keys", keys)
	}
	for _, f := range keys {
		b, _ := os.ReadFile(f)
		blk, _ := pem.Decode(b)
		k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		sg, err := signature.LoadSigner(k.(ed25519.PrivateKey), crypto.Hash(0))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := root.Sign(sg); err != nil {
			t.Fatal(err)
		}
	}
	b, err := root.ToBytes(false)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The attacker signs a vendor list with the keys the server holds and
// publishes it through the API and, failing that, straight onto the disk.
// Neither the server nor any agent accepts it; nothing of the attacker's
// installs.
func TestAttackVendorListSignedWithOnlineKeys(t *testing.T) {
	s, debianDir, m := honestSite(t)
	evilDir := newVendorRepo(t, "evil", "EVIL-1", evilPackage)
	forged := forgeSiteRoot(t, s.dataDir, "evil", tuf.RootFingerprint(mustRead(t, filepath.Join(evilDir, "metadata", "1.root.json"))))
	body := s.adm.do("PUT", "/api/v1/site/root", server.SiteRootRequest{Root: forged}, http.StatusBadRequest)
	if !strings.Contains(string(body), "not signed by the root keys of version 1") {
		t.Fatalf("server's refusal: %s", body)
	}
	s.shutdown()
	meta := filepath.Join(s.dataDir, "site", "metadata")
	os.WriteFile(filepath.Join(meta, "2.root.json"), forged, 0o644)
	os.WriteFile(filepath.Join(meta, "root.json"), forged, 0o644)
	s.start(server.Config{Vendors: []server.HostedVendor{{Name: "debian", Dir: debianDir}, {Name: "evil", Dir: evilDir}}})
	s.adm.do("PUT", "/api/v1/groups/web/approvals/evil/EVIL-1", map[string]any{"action": "install", "deadline": pastDeadline()}, http.StatusOK)

	_, err := m.checkIn(s)
	if err == nil || !strings.Contains(err.Error(), "site repository") {
		t.Fatalf("check-in: %v; want the forged site root refused", err)
	}
	if m.pwned() {
		t.Fatal("the attack worked: a vendor list signed with online keys was trusted")
	}
	// A machine enrolling now (with the honest command) refuses it too.
	m2 := newFleetHost(t)
	if _, err := m2.enroll(s, s.enrollToken("web2"), nil); err != nil {
		t.Fatal(err)
	}
	s.adm.do("PUT", "/api/v1/groups/web2/approvals/evil/EVIL-1", map[string]any{"action": "install", "deadline": pastDeadline()}, http.StatusOK)
	if _, err := m2.checkIn(s); err == nil || m2.pwned() {
		t.Fatalf("a newly enrolled agent: %v, pwned %v", err, m2.pwned())
	}
}

// The attacker serves its own repository under the trusted vendor's name.
// An agent that already uses the vendor keeps its root; an agent enrolling
// now is handed the attacker's root and refuses it, because the site root
// signs another.
func TestAttackVendorRootSwap(t *testing.T) {
	s, _, m := honestSite(t)
	fakeDir := newVendorRepo(t, "debian", "EVIL-1", evilPackage) // same name, the attacker's root
	s.shutdown()
	os.RemoveAll(filepath.Join(s.dataDir, "cache")) // the server's own verified copy of the real one
	s.start(server.Config{Vendors: []server.HostedVendor{{Name: "debian", Dir: fakeDir}}})
	s.adm.do("PUT", "/api/v1/groups/web/approvals/debian/EVIL-1", map[string]any{"action": "install", "deadline": pastDeadline()}, http.StatusOK)

	t.Run("enrolled agent", func(t *testing.T) {
		d, sc, done := m.build(s)
		defer done()
		refs, err := sc.Vendors(context.Background())
		if err != nil || len(refs) != 1 {
			t.Fatalf("vendors: %v %v", refs, err)
		}
		if added, err := d.AddVendors(context.Background(), refs); err != nil || len(added) != 0 {
			t.Fatalf("the server replaced a trusted vendor root: %v %v", added, err)
		}
		if err := d.CheckInWith(context.Background(), sc); err != nil {
			t.Logf("check-in: %v", err)
		}
		if m.pwned() {
			t.Fatal("the attack worked: the swapped vendor root was trusted")
		}
		if r := m.record(d, "debian/EVIL-1"); r.State != agent.StateFailed || !strings.Contains(r.Reason, "vendor repository debian") {
			t.Fatalf("debian/EVIL-1: %s %q", r.State, r.Reason)
		}
	})
	t.Run("enrolling agent", func(t *testing.T) {
		m2 := newFleetHost(t)
		if _, err := m2.enroll(s, s.enrollToken("web2"), nil); err != nil {
			t.Fatal(err)
		}
		s.adm.do("PUT", "/api/v1/groups/web2/approvals/debian/EVIL-1", map[string]any{"action": "install", "deadline": pastDeadline()}, http.StatusOK)
		d, err := m2.checkIn(s)
		if err != nil {
			t.Logf("check-in: %v", err)
		}
		if m2.pwned() {
			t.Fatal("the attack worked: an enrolling agent trusted the swapped vendor root")
		}
		if r := m2.record(d, "debian/EVIL-1"); r.State != agent.StateFailed || !strings.Contains(r.Reason, "is not the signed one") {
			t.Fatalf("debian/EVIL-1: %s %q", r.State, r.Reason)
		}
	})
}

// Enrollment while the server is compromised: the machine is joined with
// the command the honest first start printed (CA and site root pins).
func TestAttackEnrollAgainstCompromisedServer(t *testing.T) {
	t.Run("attacker vendor", func(t *testing.T) {
		debianDir := newVendorRepo(t, "debian", "BW-1", libfoo)
		s := newSiteServer(t)
		s.start(server.Config{Vendors: []server.HostedVendor{{Name: "debian", Dir: debianDir}}})
		evilDir := newVendorRepo(t, "evil", "EVIL-1", evilPackage)
		s.shutdown()
		s.start(server.Config{Vendors: []server.HostedVendor{{Name: "debian", Dir: debianDir}, {Name: "evil", Dir: evilDir}}})
		token := s.enrollToken("web")
		s.adm.do("PUT", "/api/v1/groups/web/approvals/evil/EVIL-1", map[string]any{"action": "install", "deadline": pastDeadline()}, http.StatusOK)
		s.adm.do("PUT", "/api/v1/groups/web/approvals/debian/BW-1", map[string]any{"action": "install", "deadline": pastDeadline()}, http.StatusOK)
		m := newFleetHost(t)
		e, err := m.enroll(s, token, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(e.Vendors) != 2 {
			t.Fatalf("the server gave %d vendor roots, want both (to be judged by the agent)", len(e.Vendors))
		}
		d, err := m.checkIn(s)
		if err != nil {
			t.Fatal(err)
		}
		if m.pwned() {
			t.Fatal("the attack worked: an agent enrolled against a compromised server trusted its vendor")
		}
		if r := m.record(d, "evil/EVIL-1"); r.State != agent.StateFailed || !strings.Contains(r.Reason, `vendor "evil" is not in the site root's signed vendor list`) {
			t.Fatalf("evil/EVIL-1: %s %q", r.State, r.Reason)
		}
		if !m.hasLibfoo() {
			t.Fatalf("debian/BW-1 did not install: %+v", m.record(d, "debian/BW-1"))
		}
	})
	t.Run("other site root", func(t *testing.T) {
		// The attacker keeps the site CA (it is on the disk) but not the
		// site root key: it makes a new site repository, whose root the
		// enrollment command's --site-root refuses.
		s, _, _ := honestSite(t)
		honestRoot, _ := s.srv.SiteRootFingerprint()
		honestCA := s.srv.CAFingerprint()
		s.shutdown()
		evil := newSiteServer(t)
		os.MkdirAll(evil.dataDir, 0o700)
		if err := os.CopyFS(filepath.Join(evil.dataDir, "tls"), os.DirFS(filepath.Join(s.dataDir, "tls"))); err != nil {
			t.Fatal(err)
		}
		evil.takeAddress(s)
		evil.start(server.Config{})
		if evil.srv.CAFingerprint() != honestCA {
			t.Fatal("the attacker's server should present the site's CA")
		}
		m := newFleetHost(t)
		_, err := agent.Enroll(context.Background(), agent.EnrollOptions{Server: evil.srv.URL(), Token: evil.enrollToken("web"), CAFingerprint: honestCA,
			SiteRootFingerprint: honestRoot, StateDir: m.state, Facts: m.facts()})
		if err == nil || !strings.Contains(err.Error(), "given with --site-root; refusing it") {
			t.Fatalf("enrolled against another site root: %v", err)
		}
	})
	t.Run("vendor pin decides", func(t *testing.T) {
		// An admin pins a vendor on the machine out of band: it is used
		// though the site does not sign it, and a pin that names another
		// root than the server serves refuses the vendor.
		s, debianDir, _ := honestSite(t)
		otherDir := newVendorRepo(t, "other", "OT-1", debtest.Package{Name: "other", Version: "1.0", Files: map[string]string{"/usr/share/other": "ok\n"}})
		s.shutdown()
		s.start(server.Config{Vendors: []server.HostedVendor{{Name: "debian", Dir: debianDir}, {Name: "other", Dir: otherDir}}})
		token := s.enrollToken("pinned")
		s.adm.do("PUT", "/api/v1/groups/pinned/approvals/other/OT-1", map[string]any{"action": "install", "deadline": pastDeadline()}, http.StatusOK)
		s.adm.do("PUT", "/api/v1/groups/pinned/approvals/debian/BW-1", map[string]any{"action": "install", "deadline": pastDeadline()}, http.StatusOK)
		m := newFleetHost(t)
		pins := map[string]string{"other": tuf.RootFingerprint(mustRead(t, filepath.Join(otherDir, "metadata", "1.root.json"))),
			"debian": "sha256:" + strings.Repeat("0", 64)}
		if _, err := m.enroll(s, token, pins); err != nil {
			t.Fatal(err)
		}
		d, err := m.checkIn(s)
		if err != nil {
			t.Fatal(err)
		}
		if r := m.record(d, "other/OT-1"); r.State != agent.StateInstalled {
			t.Fatalf("pinned vendor: %s %q", r.State, r.Reason)
		}
		if r := m.record(d, "debian/BW-1"); r.State != agent.StateFailed || m.hasLibfoo() {
			t.Fatalf("a vendor whose pin names another root: %s %q", r.State, r.Reason)
		}
	})
}

// A server's answer that names a vendor with a path (`/../../x`) is refused
// at enrollment; nothing is created outside the state directory.
func TestAttackVendorNameTraversal(t *testing.T) {
	s, _, _ := honestSite(t)
	// The attacker answers with the server's own TLS key (it holds the
	// disk) and rewrites the enrollment answer.
	mat, _, err := pki.LoadOrCreate(filepath.Join(s.dataDir, "tls"), pki.Options{Hosts: []string{"127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	tc, _ := pki.PinnedClientConfig(s.srv.CAFingerprint())
	upstream := &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}
	proxy := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, _ := http.NewRequest(r.Method, s.srv.URL()+r.URL.Path, r.Body)
		req.Header = r.Header
		resp, err := upstream.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var v map[string]any
		if json.Unmarshal(b, &v) == nil {
			if vs, ok := v["vendors"].([]any); ok && len(vs) > 0 {
				vs[0].(map[string]any)["name"] = "/../../x"
				b, _ = json.Marshal(v)
			}
		}
		w.WriteHeader(resp.StatusCode)
		w.Write(b)
	}))
	proxy.TLS = &tls.Config{Certificates: []tls.Certificate{mat.Server}}
	proxy.StartTLS()
	defer proxy.Close()
	siteRoot, _ := s.srv.SiteRootFingerprint()
	top := t.TempDir()
	state := filepath.Join(top, "a", "b", "state")
	_, err = agent.Enroll(context.Background(), agent.EnrollOptions{Server: proxy.URL, Token: s.enrollToken("web2"), CAFingerprint: s.srv.CAFingerprint(),
		SiteRootFingerprint: siteRoot, StateDir: state, Facts: newFleetHost(t).facts()})
	if err == nil || !strings.Contains(err.Error(), `vendor name "/../../x"`) {
		t.Fatalf("enrollment with a vendor named /../../x: %v", err)
	}
	var found []string
	filepath.WalkDir(top, func(p string, d os.DirEntry, err error) error {
		if strings.Contains(filepath.Base(p), "x") {
			found = append(found, p)
		}
		return nil
	})
	if len(found) != 0 || bytes.Contains(mustReadOrEmpty(filepath.Join(state, "enrollment.json")), []byte("/../")) {
		t.Fatalf("made %v", found)
	}
}

func mustReadOrEmpty(p string) []byte {
	b, _ := os.ReadFile(p)
	return b
}

// F5: a vendor repository that breaks fails alone. On the server, changing
// an approval still works and keeps the broken vendor's approvals as last
// signed; on the agent, the other vendor's update installs in the same pass
// and the broken vendor's fails with the reason.
func TestEachVendorFailsAlone(t *testing.T) {
	debianDir := newVendorRepo(t, "debian", "BW-1", libfoo)
	otherDir := newVendorRepo(t, "other", "OT-1", debtest.Package{Name: "other", Version: "1.0", Files: map[string]string{"/usr/share/other": "ok\n"}})
	s := newSiteServer(t)
	s.start(server.Config{Vendors: []server.HostedVendor{{Name: "debian", Dir: debianDir}, {Name: "other", Dir: otherDir}}})
	m := newFleetHost(t)
	if _, err := m.enroll(s, s.enrollToken("web"), nil); err != nil {
		t.Fatal(err)
	}
	s.adm.do("PUT", "/api/v1/groups/web/approvals/other/OT-1", map[string]any{"action": "install", "rollout": 100}, http.StatusOK)

	// The other vendor's repository breaks (its timestamp no longer parses).
	if err := os.WriteFile(filepath.Join(otherDir, "metadata", "timestamp.json"), []byte("{broken"), 0o644); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // the server's 1 s timestamp cache
	s.adm.do("PUT", "/api/v1/groups/web/approvals/debian/BW-1", map[string]any{"action": "install", "deadline": pastDeadline()}, http.StatusOK)
	var list struct {
		Approvals []struct{ Vendor, UpdateID string } `json:"approvals"`
	}
	json.Unmarshal(s.adm.do("GET", "/api/v1/groups/web/approvals", nil, http.StatusOK), &list)
	if len(list.Approvals) != 2 {
		t.Fatalf("approvals: %+v", list)
	}

	d, err := m.checkIn(s)
	if err != nil {
		t.Fatal(err)
	}
	if !m.hasLibfoo() {
		t.Fatalf("debian/BW-1 did not install beside a broken vendor: %+v", m.record(d, "debian/BW-1"))
	}
	if r := m.record(d, "other/OT-1"); r.State != agent.StateFailed || !strings.Contains(r.Reason, "vendor repository other") {
		t.Fatalf("other/OT-1: %s %q", r.State, r.Reason)
	}
}

// F10: after the server is rebuilt from scratch (new CA, new site root),
// enrolling again is enough: the old TUF caches go with the old enrollment.
func TestReenrollAfterServerRebuild(t *testing.T) {
	s, debianDir, m := honestSite(t)
	s.shutdown()
	if err := os.RemoveAll(s.dataDir); err != nil {
		t.Fatal(err)
	}
	os.Remove(s.rootKey)
	s.first = nil
	s.start(server.Config{Vendors: []server.HostedVendor{{Name: "debian", Dir: debianDir}}})
	token := s.enrollToken("web")
	s.adm.do("PUT", "/api/v1/groups/web/approvals/debian/BW-1", map[string]any{"action": "install", "deadline": pastDeadline()}, http.StatusOK)
	if _, err := m.enroll(s, token, nil); err != nil {
		t.Fatal(err)
	}
	d, err := m.checkIn(s)
	if err != nil {
		t.Fatalf("check-in after enrolling with the rebuilt server: %v", err)
	}
	if !m.hasLibfoo() {
		t.Fatalf("debian/BW-1: %+v", m.record(d, "debian/BW-1"))
	}
}

// A trusted vendor's root changes by TUF root rotation, signed with its old
// root: agents follow the chain from the pinned first root and keep
// installing, without any change to the site's signed vendor list.
func TestVendorRootRotationKeepsTrust(t *testing.T) {
	s, debianDir, m := honestSite(t)
	r, err := tuf.Open(debianDir, tuf.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Rotate(context.Background(), "root", tuf.RotateOptions{}); err != nil {
		t.Fatal(err)
	}
	publishDeb(t, r, "BW-2", debtest.Package{Name: "bar", Version: "2.0", Files: map[string]string{"/usr/bin/bar-version": "2.0\n"}}, "reboot: never\n")
	r.Close()
	if _, err := os.Stat(filepath.Join(debianDir, "metadata", "2.root.json")); err != nil {
		t.Fatalf("no rotated root: %v", err)
	}
	s.shutdown() // a restart indexes the new update (reports name only indexed ones)
	s.start(server.Config{Vendors: []server.HostedVendor{{Name: "debian", Dir: debianDir}}})
	s.adm.do("PUT", "/api/v1/groups/web/approvals/debian/BW-2", map[string]any{"action": "install", "deadline": pastDeadline()}, http.StatusOK)
	d, err := m.checkIn(s)
	if err != nil {
		t.Fatal(err)
	}
	if r := m.record(d, "debian/BW-2"); r.State != agent.StateInstalled {
		t.Fatalf("debian/BW-2 after the vendor's root rotation: %s %q", r.State, r.Reason)
	}
}
