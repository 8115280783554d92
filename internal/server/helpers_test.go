package server

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/pki"
	"github.com/bulwarkhq/bulwark/internal/store"
	"github.com/bulwarkhq/bulwark/internal/tuf"
	"github.com/bulwarkhq/bulwark/internal/wire"
)

// testServer is a real server on a loopback port, over HTTPS with its own
// site CA, its store a real SQLite file.
type testServer struct {
	*Server
	t      testing.TB
	url    string
	first  *FirstStart
	client *http.Client // pins the site CA, no client certificate
	stop   func()
}

// startServer starts a server and waits for the sync every start runs
// (waitStartSync), so that nothing the test then changes in a repository,
// the content store or the database races with it.
func startServer(t testing.TB, cfg Config) *testServer {
	t.Helper()
	ts := startServerSyncing(t, cfg)
	ts.waitStartSync()
	return ts
}

// startServerSyncing starts a server and returns while its start sync may
// still run: for tests that watch that sync.
func startServerSyncing(t testing.TB, cfg Config) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DataDir == "" {
		cfg.DataDir = filepath.Join(t.TempDir(), "data")
	}
	cfg.PublicURL = "https://" + ln.Addr().String()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if os.Getenv("BULWARK_TEST_LOG") != "" {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	s, first, err := Open(context.Background(), cfg)
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	ready := make(chan struct{})
	go func() { done <- s.Serve(ctx, ln, nil, func() { close(ready) }) }()
	<-ready
	ts := &testServer{Server: s, t: t, url: cfg.PublicURL, first: first}
	ts.client = pinnedClient(t, s.CAFingerprint(), nil)
	stopped := false
	ts.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		s.Close()
	}
	t.Cleanup(ts.stop)
	return ts
}

func pinnedClient(t testing.TB, pin string, cert *tls.Certificate) *http.Client {
	t.Helper()
	tc, err := pki.PinnedClientConfig(pin)
	if err != nil {
		t.Fatal(err)
	}
	if cert != nil {
		// Always present the certificate, even when the server's list of
		// acceptable CAs does not name its issuer: the server must refuse it,
		// not the client withhold it.
		tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: tc}, Timeout: 30 * time.Second}
}

// do sends a request and returns status and body.
func (ts *testServer) do(c *http.Client, method, path, token string, body any) (int, []byte, http.Header) {
	ts.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = strings.NewReader(b)
	default:
		js, err := json.Marshal(b)
		if err != nil {
			ts.t.Fatal(err)
		}
		rd = bytes.NewReader(js)
	}
	req, err := http.NewRequest(method, ts.url+path, rd)
	if err != nil {
		ts.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		ts.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header
}

// waitSync waits until a sync with this trigger ("start", "schedule",
// "manual") has finished well, and fails the test after a minute.
func (ts *testServer) waitSync(trigger string) {
	ts.t.Helper()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		runs, err := ts.st.ListSyncs(context.Background(), 1000)
		if err != nil {
			ts.t.Fatal(err)
		}
		for _, r := range runs {
			if r.Trigger == trigger && r.Status == store.SyncOK {
				return
			}
		}
		if time.Now().After(deadline) {
			ts.t.Fatalf("no %s sync finished well within a minute; runs: %+v", trigger, runs)
		}
	}
}

// waitStartSync waits until the sync every start runs has ended, well or
// not (Server.StartSynced), and fails the test after two minutes: a test
// that changes a repository or the content store under the server must, or
// that sync may run after the change. startServer does it.
func (ts *testServer) waitStartSync() {
	ts.t.Helper()
	select {
	case <-ts.StartSynced():
	case <-time.After(2 * time.Minute):
		ts.t.Fatal("the sync the server runs at start did not end within two minutes")
	}
}

// admin calls the admin API with the first admin token and wants code.
func (ts *testServer) admin(method, path string, body any, want int) []byte {
	ts.t.Helper()
	code, b, _ := ts.do(ts.client, method, path, ts.first.AdminToken, body)
	if code != want {
		ts.t.Fatalf("%s %s = %d %s, want %d", method, path, code, b, want)
	}
	return b
}

// newToken makes an API or enrollment token through the API.
func (ts *testServer) newToken(req TokenRequest) string {
	ts.t.Helper()
	var resp TokenResponse
	if err := json.Unmarshal(ts.admin("POST", "/api/v1/tokens", req, http.StatusCreated), &resp); err != nil {
		ts.t.Fatal(err)
	}
	return resp.Token
}

// vendorRepo is a vendor repository made and published to as `bulwark repo`
// does.
type vendorRepo struct {
	dir  string
	repo *tuf.Repository
}

func newVendorRepo(t testing.TB, name string) *vendorRepo {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	r, err := tuf.Init(dir, tuf.InitOptions{Name: name, BinBits: 4}, tuf.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return &vendorRepo{dir: dir, repo: r}
}

func (v *vendorRepo) publish(t testing.TB, id, severity string, payloads map[string]string) {
	t.Helper()
	v.publishWith(t, id, severity, payloads, "")
}

// publishWith publishes an update with extra YAML lines (e.g. "cves: [...]\n").
func (v *vendorRepo) publishWith(t testing.TB, id, severity string, payloads map[string]string, extra string) {
	t.Helper()
	dir := t.TempDir()
	var pl strings.Builder
	for name, content := range payloads {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&pl, "  - file: %s\n", name)
	}
	doc := fmt.Sprintf("id: %s\ntitle: Test update %s\nproduct: debian-12\nclassification: security\nseverity: %s\nreleased: 2026-11-20\nreboot: never\ninstaller:\n  type: archive\n  prefix: /opt/bw-test\n%spayloads:\n%s",
		id, id, severity, extra, pl.String())
	p := filepath.Join(dir, id+".yaml")
	if err := os.WriteFile(p, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := v.repo.Publish(context.Background(), p, tuf.PublishOptions{Revise: true}); err != nil {
		t.Fatal(err)
	}
}

func (v *vendorRepo) root(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(v.dir, "metadata", "1.root.json"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// testAgent is an agent's side of enrollment and mTLS.
type testAgent struct {
	machineID string
	key       *ecdsa.PrivateKey
	resp      *wire.EnrollResponse
	client    *http.Client
}

func csrFor(t testing.TB, key *ecdsa.PrivateKey) string {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "agent"}}, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

func (ts *testServer) enroll(token, machineID, group string) *testAgent {
	ts.t.Helper()
	return ts.enrollFrom(ts.client, token, machineID, group)
}

// enrollFrom enrolls through c: ts.client, or an agent's client to prove
// it holds that agent's identity.
func (ts *testServer) enrollFrom(c *http.Client, token, machineID, group string) *testAgent {
	ts.t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	req := wire.EnrollRequest{Token: token, CSR: csrFor(ts.t, key), Group: group,
		Facts: wire.Facts{MachineID: machineID, Hostname: "host-" + machineID[:8], OS: "debian 12", Arch: "amd64"}}
	code, b, _ := ts.do(c, "POST", "/agent/v1/enroll", "", req)
	if code != http.StatusCreated {
		ts.t.Fatalf("enroll: %d %s", code, b)
	}
	var resp wire.EnrollResponse
	if err := json.Unmarshal(b, &resp); err != nil {
		ts.t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	cert, err := tls.X509KeyPair([]byte(resp.Certificate), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}))
	if err != nil {
		ts.t.Fatal(err)
	}
	return &testAgent{machineID: machineID, key: key, resp: &resp, client: pinnedClient(ts.t, ts.CAFingerprint(), &cert)}
}

// agentDo sends an agent request with its client certificate and machine id.
func (ts *testServer) agentDo(a *testAgent, c *http.Client, method, path string, body any, hdr map[string]string) (int, []byte, http.Header) {
	ts.t.Helper()
	var rd io.Reader
	if body != nil {
		js, _ := json.Marshal(body)
		rd = bytes.NewReader(js)
	}
	req, _ := http.NewRequest(method, ts.url+path, rd)
	req.Header.Set(wire.MachineIDHeader, a.machineID)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, []byte(err.Error()), nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header
}

const machineA = "0123456789abcdef0123456789abcdef"
const machineB = "fedcba9876543210fedcba9876543210"

// knowUpdates adds updates of vendor to the server's index, as a sync
// would, so that reports may name them.
func (ts *testServer) knowUpdates(vendor string, ids ...string) {
	ts.t.Helper()
	var us []store.Update
	for _, id := range ids {
		us = append(us, store.Update{Vendor: vendor, ID: id, Title: id, SHA256: strings.Repeat("0", 64), IndexedAt: time.Now()})
	}
	if err := ts.st.UpsertUpdates(context.Background(), us); err != nil {
		ts.t.Fatal(err)
	}
	ts.known.forget(vendor)
}
