package pki

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var now = time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)

func csrPEM(t testing.TB, key any, cn string) []byte {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn}}, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

func TestLoadOrCreate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	m, created, err := LoadOrCreate(dir, Options{Hosts: []string{"example.test", "localhost", "127.0.0.1"}, Now: func() time.Time { return now }})
	if err != nil || !created {
		t.Fatalf("first LoadOrCreate: created=%v err=%v", created, err)
	}
	for name, want := range map[string]os.FileMode{"": 0o700, CAKeyFile: 0o600, ServerKeyFile: 0o600} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v (%v)", name, fi.Mode().Perm(), want, err)
		}
	}
	m2, created, err := LoadOrCreate(dir, Options{})
	if err != nil || created {
		t.Fatalf("second LoadOrCreate: created=%v err=%v", created, err)
	}
	if Fingerprint(m.CA.Cert) != Fingerprint(m2.CA.Cert) {
		t.Fatal("CA changed on reload")
	}
	leaf, err := x509.ParseCertificate(m2.Server.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := leaf.VerifyHostname("example.test"); err != nil {
		t.Error(err)
	}
	if err := leaf.VerifyHostname("127.0.0.1"); err != nil {
		t.Error(err)
	}
}

func TestServerCertificateReissued(t *testing.T) {
	dir := t.TempDir()
	clock := now
	tick := func() time.Time { return clock }
	m, _, err := LoadOrCreate(dir, Options{Hosts: []string{"localhost"}, Now: tick})
	if err != nil {
		t.Fatal(err)
	}
	serial := func(m *Material) string {
		c, _ := x509.ParseCertificate(m.Server.Certificate[0])
		return SerialString(c.SerialNumber)
	}
	first := serial(m)
	tests := []struct {
		name    string
		hosts   []string
		advance time.Duration
		want    bool // a new certificate
	}{
		{"same names, early", []string{"localhost"}, 0, false},
		{"a name added", []string{"localhost", "updates.example.test"}, 0, true},
		{"an address added", []string{"localhost", "updates.example.test", "192.0.2.10"}, 0, true},
		{"near expiry", []string{"localhost"}, ServerValidity - RenewBefore/2, true},
	}
	prev := first
	for _, tc := range tests {
		clock = clock.Add(tc.advance)
		m, _, err := LoadOrCreate(dir, Options{Hosts: tc.hosts, Now: tick})
		if err != nil {
			t.Fatal(err)
		}
		if got := serial(m) != prev; got != tc.want {
			t.Fatalf("%s: new certificate = %v, want %v", tc.name, got, tc.want)
		}
		prev = serial(m)
		if Fingerprint(m.CA.Cert) == "" {
			t.Fatal("no CA")
		}
	}
}

func TestPinnedClientConfig(t *testing.T) {
	m, _, err := LoadOrCreate(t.TempDir(), Options{Hosts: []string{"localhost"}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{m.Server}}
	srv.StartTLS()
	defer srv.Close()
	other, err := NewCA("other", now)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		pin    string
		wantOK bool
	}{
		{"right pin", Fingerprint(m.CA.Cert), true},
		{"pin of another CA", Fingerprint(other.Cert), false},
		{"pin of the server leaf is not a CA", func() string { c, _ := x509.ParseCertificate(m.Server.Certificate[0]); return Fingerprint(c) }(), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := PinnedClientConfig(tc.pin)
			if err != nil {
				t.Fatal(err)
			}
			c := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
			resp, err := c.Get(srv.URL)
			if resp != nil {
				resp.Body.Close()
			}
			if (err == nil) != tc.wantOK {
				t.Fatalf("err = %v, want ok=%v", err, tc.wantOK)
			}
		})
	}
	for _, bad := range []string{"", "sha256:zz", "md5:" + strings.Repeat("a", 64), "sha256:" + strings.Repeat("a", 62)} {
		if _, err := PinnedClientConfig(bad); err == nil {
			t.Errorf("PinnedClientConfig(%q) accepted", bad)
		}
	}
}

func TestSignAgent(t *testing.T) {
	ca, err := NewCA("test", now)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, err := ParseCSR(csrPEM(t, key, "admin-please"))
	if err != nil {
		t.Fatal(err)
	}
	certPEM, serial, err := ca.SignAgent(csr, "agent-1", now)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(certPEM)
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if cert.Subject.CommonName != "agent-1" || SerialString(cert.SerialNumber) != serial {
		t.Fatalf("agent certificate names %q serial %s", cert.Subject.CommonName, serial)
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, CurrentTime: now}); err == nil {
		t.Fatal("an agent certificate is valid for server authentication")
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, CurrentTime: now}); err != nil {
		t.Fatal(err)
	}
}

func TestParseCSRAttacks(t *testing.T) {
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 1024)
	good := csrPEM(t, ecKey, "x")
	b, _ := pem.Decode(good)
	tampered := append([]byte(nil), b.Bytes...)
	tampered[len(tampered)-1] ^= 1
	tests := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"garbage", []byte("not a csr")},
		{"oversized", make([]byte, MaxCSRSize+1)},
		{"certificate instead of CSR", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: b.Bytes})},
		{"broken self-signature", tampered},
		{"weak curve P-224", csrPEM(t, p224, "x")},
		{"RSA key", csrPEM(t, rsaKey, "x")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ParseCSR(tc.in); !errors.Is(err, ErrBadCSR) {
				t.Fatalf("err = %v, want ErrBadCSR", err)
			}
		})
	}
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	if _, err := ParseCSR(csrPEM(t, edKey, "x")); err != nil {
		t.Fatalf("Ed25519 CSR refused: %v", err)
	}
}

func FuzzParseCSR(f *testing.F) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	f.Add(csrPEM(f, key, "x"))
	f.Add([]byte("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"))
	f.Add([]byte{0x30, 0x82, 0x01})
	f.Fuzz(func(t *testing.T, data []byte) {
		csr, err := ParseCSR(data)
		if err == nil && csr.CheckSignature() != nil {
			t.Fatal("accepted a CSR whose signature does not check")
		}
	})
}
