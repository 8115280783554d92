package server

import (
	"crypto/tls"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bulwarkhq/bulwark/internal/pki"
)

// servedCert returns the serial of the certificate the server presents.
func servedCert(t *testing.T, ts *testServer) string {
	t.Helper()
	tc, err := pki.PinnedClientConfig(ts.CAFingerprint())
	if err != nil {
		t.Fatal(err)
	}
	c, err := tls.Dial("tcp", strings.TrimPrefix(ts.url, "https://"), tc)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return pki.SerialString(c.ConnectionState().PeerCertificates[0].SerialNumber)
}

func TestReloadTLS(t *testing.T) {
	ts := startServer(t, Config{})
	before := servedCert(t, ts)
	// An admin (or certbot's hook) replaced the server certificate: here
	// it is removed, so the reload makes a new one as a start would.
	dir := filepath.Join(ts.cfg.DataDir, tlsDir)
	for _, f := range []string{pki.ServerCertFile, pki.ServerKeyFile} {
		if err := os.Remove(filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	if err := ts.ReloadTLS(); err != nil {
		t.Fatal(err)
	}
	after := servedCert(t, ts)
	if after == before {
		t.Fatal("the server serves the old certificate after the reload")
	}
	// A different site CA on disk is refused: agents pin the running one.
	other := t.TempDir()
	if _, _, err := pki.LoadOrCreate(other, pki.Options{Hosts: []string{"localhost"}}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{pki.CACertFile, pki.CAKeyFile} {
		b, err := os.ReadFile(filepath.Join(other, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := ts.ReloadTLS(); err == nil || !strings.Contains(err.Error(), "site CA") {
		t.Fatalf("reload with another CA on disk: %v; want refused", err)
	}
	if got := servedCert(t, ts); got != after {
		t.Fatal("a refused reload changed the served certificate")
	}
}
