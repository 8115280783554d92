package e2e

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/agent"
	"github.com/bulwarkhq/bulwark/internal/pki"
	"github.com/bulwarkhq/bulwark/internal/server"
	"github.com/bulwarkhq/bulwark/internal/store"
	"github.com/bulwarkhq/bulwark/internal/wire"
)

// agentClient is an mTLS client made from what is in the state directory
// now, the way `bulwark agent run` starts.
func agentClient(t *testing.T, dir, machineID string) (*agent.ServerClient, *http.Client, *agent.Enrollment) {
	t.Helper()
	e, err := agent.LoadEnrollment(dir)
	if err != nil {
		t.Fatal(err)
	}
	tc, err := e.TLSConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}
	return agent.NewServerClient(hc, e, machineID), hc, e
}

func certSerial(t *testing.T, p string) string {
	t.Helper()
	b, _ := pem.Decode([]byte(p))
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return pki.SerialString(c.SerialNumber)
}

// An agent whose certificate lives 6 s renews it at two thirds of that over
// mutual TLS with the current one; the server records the new expiry; the
// replaced certificate stops working once the new one is used; a renewal
// whose answer was lost does not lock the agent out; and an expired
// certificate is refused with the way out in the message.
func TestAgentRenewsCertificate(t *testing.T) {
	ctx := context.Background()
	const lifetime = 6 * time.Second
	srv, first := serve(t, server.Config{AgentCertLifetime: lifetime})

	dir := t.TempDir()
	const mid = "0123456789abcdef0123456789abcdef"
	siteRoot, err := srv.SiteRootFingerprint()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := agent.Enroll(ctx, agent.EnrollOptions{Server: srv.URL(), Token: first.EnrollToken, CAFingerprint: srv.CAFingerprint(), SiteRootFingerprint: siteRoot, StateDir: dir,
		Facts: wire.Facts{MachineID: mid, Hostname: "web-01", OS: "debian 12", Arch: "amd64"}}); err != nil {
		t.Fatal(err)
	}
	sc, _, e := agentClient(t, dir, mid)
	nb, na, err := sc.CertValidity()
	if err != nil {
		t.Fatal(err)
	}
	if got := time.Until(na); got > lifetime+time.Second || got < lifetime-3*time.Second {
		t.Fatalf("enrolled certificate valid for another %v, want about %v", got, lifetime)
	}
	if renewed, err := sc.RenewIfDue(ctx, dir, time.Now()); err != nil || renewed {
		t.Fatalf("RenewIfDue before two thirds: %v, %v; want nothing done", renewed, err)
	}
	oldSerial := certSerial(t, e.Certificate)
	// A second client with the enrolled certificate, kept for the attacks
	// below (the agent itself deletes the old key once it renewed).
	oldSC, oldHC, _ := agentClient(t, dir, mid)

	time.Sleep(time.Until(agent.RenewalDue(nb, na)) + 50*time.Millisecond)
	// The first renewal's answer is lost: the agent still holds only the
	// enrolled certificate, which the server keeps accepting.
	lostRenewal(t, oldHC, e.CheckinURL, mid)
	renewed, err := sc.RenewIfDue(ctx, dir, time.Now())
	if err != nil || !renewed {
		t.Fatalf("RenewIfDue after two thirds (after a lost answer): %v, %v", renewed, err)
	}
	_, na2, err := sc.CertValidity()
	if err != nil {
		t.Fatal(err)
	}
	if !na2.After(na) {
		t.Fatalf("renewed certificate expires %v, not after the old %v", na2, na)
	}
	// What is on disk is the new pair; the old key is gone.
	onDisk, err := agent.LoadEnrollment(dir)
	if err != nil {
		t.Fatal(err)
	}
	newSerial := certSerial(t, onDisk.Certificate)
	if newSerial == oldSerial || onDisk.KeyFile == "" {
		t.Fatalf("enrollment.json after renewal: serial %s (old %s), key file %q", newSerial, oldSerial, onDisk.KeyFile)
	}
	if _, err := os.Stat(filepath.Join(dir, "client.key")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the enrolled key is still on disk: %v", err)
	}
	if _, err := onDisk.TLSConfig(dir); err != nil {
		t.Fatalf("the renewed pair on disk does not load: %v", err)
	}
	// The new certificate works, and the server shows its expiry.
	if _, _, err := sc.CheckIn(ctx); err != nil {
		t.Fatalf("check-in with the renewed certificate: %v", err)
	}
	tc, _ := pki.PinnedClientConfig(srv.CAFingerprint())
	adm := admin{t: t, url: srv.URL(), token: first.AdminToken, hc: &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}}
	var c store.Agent
	json.Unmarshal(adm.do("GET", "/api/v1/computers/"+e.AgentID, nil, http.StatusOK), &c)
	if c.CertSerial != newSerial || c.CertNotAfter.Sub(na2).Abs() > time.Second {
		t.Fatalf("server shows serial %s expiring %v; want %s expiring %v", c.CertSerial, c.CertNotAfter, newSerial, na2)
	}
	metrics := string(adm.do("GET", "/metrics", nil, http.StatusOK))
	for _, want := range []string{"bulwark_agent_certificate_renewals_total 2", `bulwark_agent_certificates_expiring{within="7d"} 1`, "bulwark_agent_certificate_earliest_expiry_timestamp_seconds"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q", want)
		}
	}

	t.Run("TestAttackReplacedCertificate", func(t *testing.T) {
		// Once the agent used its new certificate, the old one (a copy an
		// attacker took from a backup) is refused, for check-ins and for
		// renewing itself a fresh one.
		oldHC.Transport.(*http.Transport).CloseIdleConnections()
		if _, _, err := oldSC.CheckIn(ctx); err == nil || !strings.Contains(err.Error(), "replaced") {
			t.Fatalf("check-in with the replaced certificate: %v; want refused", err)
		}
		if _, err := oldSC.RenewIfDue(ctx, t.TempDir(), time.Now()); err == nil || !strings.Contains(err.Error(), "replaced") {
			t.Fatalf("renewal with the replaced certificate: %v; want refused", err)
		}
	})

	t.Run("expired", func(t *testing.T) {
		time.Sleep(time.Until(na2) + time.Second)
		_, hc, _ := agentClient(t, dir, mid)
		req, _ := http.NewRequest("GET", e.CheckinURL, nil)
		req.Header.Set(wire.MachineIDHeader, mid)
		if resp, err := hc.Do(req); err == nil {
			resp.Body.Close()
			t.Fatalf("check-in with an expired certificate: HTTP %d; want the TLS handshake refused", resp.StatusCode)
		}
		_, err := sc.RenewIfDue(ctx, dir, time.Now())
		if !errors.Is(err, agent.ErrCertExpired) || !strings.Contains(err.Error(), "bulwark agent enroll") {
			t.Fatalf("RenewIfDue after expiry: %v; want ErrCertExpired naming the way out", err)
		}
	})
}

// lostRenewal asks for a renewal with hc and throws the answer away.
func lostRenewal(t *testing.T, hc *http.Client, checkinURL, mid string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	body, _ := json.Marshal(map[string]string{"csr": string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))})
	req, _ := http.NewRequest("POST", strings.TrimSuffix(checkinURL, "/checkin")+"/renew", bytes.NewReader(body))
	req.Header.Set(wire.MachineIDHeader, mid)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("renewal: HTTP %d", resp.StatusCode)
	}
}
