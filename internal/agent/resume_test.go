package agent

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/pki"
	"github.com/bulwarkhq/bulwark/internal/wire"
)

// TestTLSSessionResumed: the agent's second connection to the server
// resumes the first one's TLS session (no certificate exchange), and the
// server still sees the agent's verified client certificate.
func TestTLSSessionResumed(t *testing.T) {
	now := time.Now()
	ca, err := pki.NewCA("test CA", now)
	if err != nil {
		t.Fatal(err)
	}
	srvCert, srvKey, err := ca.IssueServer([]string{"127.0.0.1"}, now)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(srvCert, srvKey)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{pair},
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: ca.Pool()})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type seen struct {
		resumed bool
		cn      string
	}
	got := make(chan seen, 2)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			tc := c.(*tls.Conn)
			if err := tc.Handshake(); err != nil {
				got <- seen{}
				c.Close()
				continue
			}
			cs := tc.ConnectionState()
			s := seen{resumed: cs.DidResume}
			if len(cs.VerifiedChains) > 0 {
				s.cn = cs.VerifiedChains[0][0].Subject.CommonName
			}
			c.Write([]byte("x")) // lets the client read the session ticket
			c.Close()
			got <- s
		}
	}()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csrDER, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "x"}}, key)
	csr, _ := x509.ParseCertificateRequest(csrDER)
	certPEM, _, err := ca.SignAgent(csr, "agt-resume", now)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	kder, _ := x509.MarshalECPrivateKey(key)
	if err := os.WriteFile(filepath.Join(dir, "client.key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	e := &Enrollment{EnrollResponse: wire.EnrollResponse{AgentID: "agt-resume", Certificate: string(certPEM), CA: string(ca.CertPEM)}}
	conf, err := e.TLSConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i, wantResumed := range []bool{false, true} {
		c, err := tls.Dial("tcp", ln.Addr().String(), conf.Clone())
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 1)
		c.Read(buf)
		c.Close()
		s := <-got
		if s.cn != "agt-resume" || s.resumed != wantResumed {
			t.Fatalf("connection %d: server saw %+v, want the agent's certificate and resumed=%v", i+1, s, wantResumed)
		}
	}
}
