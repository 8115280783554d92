package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/agent"
	"github.com/bulwarkhq/bulwark/internal/pki"
	"github.com/bulwarkhq/bulwark/internal/server"
	"github.com/bulwarkhq/bulwark/internal/server/servertest"
	"github.com/bulwarkhq/bulwark/internal/wire"
)

// TestAttackTerminalEscapesInAdminOutput: an enrolled agent reports a
// failure whose reason (and its os fact) carries terminal escape sequences
// meant to erase the line and draw a fake "installed" one. A real server
// stores it; `bulwark admin computers show/list` print it escaped, so the
// terminal interprets nothing.
func TestAttackTerminalEscapesInAdminOutput(t *testing.T) {
	ctx := t.Context()
	ls := startLocalServer(t)
	s, first, data, admin := ls.s, ls.first, ls.data, ls.admin
	work := t.TempDir()

	const evil = "\x1b[2K\x1b[1G\x1b[32minstalled\x1b[0m all good\x1b]0;owned\x07"
	url, _ := os.ReadFile(filepath.Join(data, server.LocalURLFile))
	state := filepath.Join(work, "agent")
	e, err := agent.Enroll(ctx, agent.EnrollOptions{Server: strings.TrimSpace(string(url)), Token: first.EnrollToken,
		CAFingerprint: s.CAFingerprint(), SiteRootFingerprint: mustSiteRoot(t, s), StateDir: state,
		Facts: wire.Facts{MachineID: "0123456789abcdef0123456789abcdef", Hostname: "victim", OS: "debian 12\x1b[2K\x1b]0;owned\x07", Arch: "amd64"}})
	if err != nil {
		t.Fatal(err)
	}
	tc, err := e.TLSConfig(state)
	if err != nil {
		t.Fatal(err)
	}
	sc := agent.NewServerClient(&http.Client{Transport: &http.Transport{TLSClientConfig: tc.Clone()}}, e, "0123456789abcdef0123456789abcdef")
	_, err = sc.Report(ctx, agent.Report{AgentID: e.AgentID, Events: []agent.Event{{Seq: 1, Key: "example/BW-1", State: agent.StateFailed, Reason: "dpkg failed" + evil, Time: time.Now()}}})
	if err != nil {
		t.Fatal(err)
	}

	for _, args := range [][]string{{"computers", "show", e.AgentID}, {"computers", "list"}} {
		out := admin(args...)
		if strings.ContainsAny(out, "\x1b\r\x07") {
			t.Fatalf("admin %v printed raw control characters:\n%q", args, out)
		}
		if !strings.Contains(out, `\x1b[2K`) {
			t.Fatalf("admin %v does not show the escaped sequence:\n%s", args, out)
		}
	}
}

// localServer is a real server in this process, hosting a vendor
// repository with one published update (example/BW-1), indexed.
type localServer struct {
	s     *server.Server
	first *server.FirstStart
	data  string
	admin func(args ...string) string
}

func startLocalServer(t *testing.T) *localServer {
	t.Helper()
	ctx := t.Context()
	work := t.TempDir()
	vendor := filepath.Join(work, "vendor")
	mustRun(t, "repo", "init", vendor, "--name", "example")
	upd := filepath.Join(work, "upd")
	os.MkdirAll(upd, 0o755)
	os.WriteFile(filepath.Join(upd, "p.tar.zst"), []byte("payload"), 0o644)
	os.WriteFile(filepath.Join(upd, "BW-1.yaml"), []byte(`id: BW-1
title: test update
product: debian-12
classification: security
severity: important
released: 2026-11-20
reboot: never
installer:
  type: archive
  prefix: /opt/x
payloads:
  - file: p.tar.zst
`), 0o644)
	mustRun(t, "repo", "publish", vendor, filepath.Join(upd, "BW-1.yaml"))

	data := filepath.Join(work, "srv")
	s, first, err := server.Open(ctx, server.Config{DataDir: data, Listen: "127.0.0.1:0",
		Vendors: []server.HostedVendor{{Name: "example", Dir: vendor}}})
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	ready := make(chan struct{})
	go func() { done <- s.Run(sctx, func() { close(ready) }) }()
	t.Cleanup(func() { stop(); <-done; s.Close() })
	<-ready
	tokFile := filepath.Join(work, "admin.token")
	os.WriteFile(tokFile, []byte(first.AdminToken+"\n"), 0o600)
	admin := func(args ...string) string {
		t.Helper()
		return mustRun(t, append([]string{"admin", "--data-dir", data, "--token-file", tokFile, "--wait", "30s"}, args...)...)
	}
	// The server indexes the hosted vendor at start.
	servertest.WaitStartSync(t, s)
	if out := admin("updates", "list"); !strings.Contains(out, "BW-1") {
		t.Fatalf("BW-1 not indexed by the sync at start: %s", out)
	}

	return &localServer{s: s, first: first, data: data, admin: admin}
}

func mustRun(t testing.TB, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	if err := run(context.Background(), args, strings.NewReader(""), &out, &errb); err != nil {
		t.Fatalf("bulwark %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	return out.String()
}

// TestReenrollProvesPossession (F2, agent side): `agent enroll` run again
// on an enrolled machine presents its current certificate, so the server
// replaces the old identity at once; the same machine id claimed from
// another state directory (another machine, or an attacker) waits for an
// admin's approval and leaves the enrolled one alone.
func TestReenrollProvesPossession(t *testing.T) {
	ctx := t.Context()
	ls := startLocalServer(t)
	url, _ := os.ReadFile(filepath.Join(ls.data, server.LocalURLFile))
	enroll := func(state string) *agent.Enrollment {
		t.Helper()
		e, err := agent.Enroll(ctx, agent.EnrollOptions{Server: strings.TrimSpace(string(url)), Token: ls.first.EnrollToken,
			CAFingerprint: ls.s.CAFingerprint(), SiteRootFingerprint: mustSiteRoot(t, ls.s), StateDir: state,
			Facts: wire.Facts{MachineID: "fedcba9876543210fedcba9876543210", Hostname: "m", OS: "debian 12", Arch: "amd64"}})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	state := filepath.Join(t.TempDir(), "state")
	first := enroll(state)
	second := enroll(state)
	if second.Status != "active" {
		t.Fatalf("re-enrollment from the enrolled machine: %q %q, want active", second.Status, second.Message)
	}
	claim := enroll(filepath.Join(t.TempDir(), "elsewhere"))
	if claim.Status != "pending" {
		t.Fatalf("the same machine id from another state directory: %q, want pending", claim.Status)
	}
	out := ls.admin("computers", "list")
	for id, want := range map[string]string{first.AgentID: "revoked", second.AgentID: "active", claim.AgentID: "pending"} {
		if !regexp.MustCompile(id + `\s+\S+\s+\S+\s+` + want).MatchString(out) {
			t.Errorf("%s is not %s:\n%s", id, want, out)
		}
	}
	ls.admin("computers", "approve", claim.AgentID)
	out = ls.admin("computers", "list")
	if !regexp.MustCompile(claim.AgentID+`\s+\S+\s+\S+\s+active`).MatchString(out) || !regexp.MustCompile(second.AgentID+`\s+\S+\s+\S+\s+revoked`).MatchString(out) {
		t.Errorf("after approval:\n%s", out)
	}
}

// mustSiteRoot is the site root fingerprint the enrollment command carries.
func mustSiteRoot(t *testing.T, s *server.Server) string {
	t.Helper()
	fp, err := s.SiteRootFingerprint()
	if err != nil {
		t.Fatal(err)
	}
	return fp
}

// TestReenrollAfterCertificateExpired: a machine that was off past its
// certificate's lifetime enrolls again as docs/ADMIN.md says. Its expired
// certificate proves nothing and would fail the TLS handshake, so enroll
// does not present it: the new identity waits for an admin's approval.
func TestReenrollAfterCertificateExpired(t *testing.T) {
	ctx := t.Context()
	ls := startLocalServer(t)
	url, _ := os.ReadFile(filepath.Join(ls.data, server.LocalURLFile))
	state := filepath.Join(t.TempDir(), "state")
	opts := agent.EnrollOptions{Server: strings.TrimSpace(string(url)), Token: ls.first.EnrollToken,
		CAFingerprint: ls.s.CAFingerprint(), SiteRootFingerprint: mustSiteRoot(t, ls.s), StateDir: state,
		Facts: wire.Facts{MachineID: "0123456789abcdef0123456789abcdef", Hostname: "m", OS: "debian 12", Arch: "amd64"}}
	first, err := agent.Enroll(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}

	// The site CA signs the machine's key again, valid from two hours ago
	// to one hour ago: the certificate the machine holds has expired.
	tlsCopy := t.TempDir()
	for _, f := range []string{pki.CACertFile, pki.CAKeyFile} {
		b, err := os.ReadFile(filepath.Join(ls.data, "tls", f))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(tlsCopy, f), b, 0o600)
	}
	m, _, err := pki.LoadOrCreate(tlsCopy, pki.Options{Hosts: []string{"localhost"}})
	if err != nil {
		t.Fatal(err)
	}
	keyFile := first.KeyFile
	if keyFile == "" {
		keyFile = "client.key"
	}
	keyPEM, err := os.ReadFile(filepath.Join(state, keyFile))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(keyPEM)
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	csrDER, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, _, err := m.CA.SignAgentFor(csr, first.AgentID, time.Now().Add(-2*time.Hour), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	saved, err := agent.LoadEnrollment(state)
	if err != nil {
		t.Fatal(err)
	}
	saved.Certificate = string(certPEM)
	b, _ := json.Marshal(saved)
	if err := os.WriteFile(filepath.Join(state, "enrollment.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}

	again, err := agent.Enroll(ctx, opts)
	if err != nil {
		t.Fatalf("enrolling again with an expired certificate: %v", err)
	}
	if again.Status != "pending" {
		t.Fatalf("re-enrollment with an expired certificate: %q, want pending (nothing proves possession)", again.Status)
	}
	ls.admin("computers", "approve", again.AgentID)
	out := ls.admin("computers", "list")
	if !regexp.MustCompile(again.AgentID+`\s+\S+\s+\S+\s+active`).MatchString(out) || !regexp.MustCompile(first.AgentID+`\s+\S+\s+\S+\s+revoked`).MatchString(out) {
		t.Errorf("after approval:\n%s", out)
	}
}
