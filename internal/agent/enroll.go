package agent

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/bulwarkhq/bulwark/internal/atomicfile"
	"github.com/bulwarkhq/bulwark/internal/catalog"
	"github.com/bulwarkhq/bulwark/internal/pki"
	"github.com/bulwarkhq/bulwark/internal/tuf"
	"github.com/bulwarkhq/bulwark/internal/wire"
)

// The agent's side of the update server's agent API (internal/server,
// agentapi.go); the types both sides send are in internal/wire.

// Enrollment is what the agent keeps from enrolling (enrollment.json in the
// state directory, with client.key, client.crt and ca.crt beside it).
type Enrollment struct {
	// The server's answer, as it gave it (Status pending: waits for an
	// admin's approval, Message says why).
	wire.EnrollResponse
	Server     string    `json:"server,omitempty"`
	MachineID  string    `json:"machine_id,omitempty"`
	EnrolledAt time.Time `json:"enrolled_at,omitzero"`
	// KeyFile is the client key's file in the state directory; empty is
	// client.key (enrollment). Renewals write a new one.
	KeyFile string `json:"key_file,omitempty"`

	// SiteRootFingerprint pins the site's first root, as the enrollment
	// command gave it; VendorPins are vendor roots pinned out of band
	// (--vendor NAME=sha256:…). Neither comes from the server.
	SiteRootFingerprint string            `json:"site_root_fingerprint,omitempty"`
	VendorPins          map[string]string `json:"vendor_pins,omitempty"`

	id *identity // set by TLSConfig; renewals swap its certificate
}

// EnrollOptions are the inputs of `bulwark agent enroll`.
type EnrollOptions struct {
	Server        string // https://host:8443
	Token         string
	CAFingerprint string // sha256:… printed by `bulwark server`
	Group         string // client-side targeting request
	// SiteRootFingerprint is the site's first root, sha256:… as
	// `bulwark server` printed it: the server's CA key alone cannot make
	// the agent trust another site root. Required.
	SiteRootFingerprint string
	// VendorPins trust vendor roots out of band: name → sha256:… of the
	// vendor's first root (--vendor NAME=sha256:…).
	VendorPins map[string]string
	StateDir   string
	Facts      wire.Facts
	Now        func() time.Time
}

// Enroll pins the site CA by its fingerprint, sends a CSR and the machine's
// facts with the token, and stores the client certificate, the site and
// vendor roots and the agent's identity in the state directory. The private
// key never leaves the machine.
func Enroll(ctx context.Context, o EnrollOptions) (*Enrollment, error) {
	if !strings.HasPrefix(o.Server, "https://") {
		return nil, fmt.Errorf("--server %q: use the https:// URL that `bulwark server` printed", o.Server)
	}
	if o.Token == "" {
		return nil, errors.New("--token: the enrollment token is required (create one with `bulwark admin tokens create --enroll`)")
	}
	tlsConf, err := pki.PinnedClientConfig(o.CAFingerprint)
	if err != nil {
		return nil, fmt.Errorf("--ca-fingerprint: %w", err)
	}
	if o.SiteRootFingerprint == "" {
		return nil, errors.New("--site-root: the site root fingerprint (sha256:…) that `bulwark server` printed in the enrollment command is required")
	}
	siteRoot, err := tuf.ParseRootFingerprint(o.SiteRootFingerprint)
	if err != nil {
		return nil, fmt.Errorf("--site-root: %w", err)
	}
	pins, err := tuf.CheckVendorPins("--vendor", o.VendorPins)
	if err != nil {
		return nil, err
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if err := os.MkdirAll(o.StateDir, 0o700); err != nil {
		return nil, err
	}
	key, csrPEM, err := newKey(o.Facts.Hostname)
	if err != nil {
		return nil, err
	}
	body, _ := json.Marshal(wire.EnrollRequest{Token: o.Token, CSR: csrPEM, Facts: o.Facts, Group: o.Group})
	// Re-enrolling with the same site CA: present the current client
	// certificate, which proves to the server that this is the machine that
	// holds the old identity, so the server retires it at once rather than
	// holding the new one for an admin's approval.
	// An expired certificate proves nothing and fails the handshake, so it
	// is not presented: the new identity then waits for an admin's approval
	// (docs/ADMIN.md, "An agent whose certificate expired").
	if prev, err := LoadEnrollment(o.StateDir); err == nil && sameCA(prev.CA, o.CAFingerprint) && prev.certValid(time.Now()) {
		if pc, err := prev.TLSConfig(o.StateDir); err == nil {
			tlsConf.GetClientCertificate = pc.GetClientCertificate
		}
	}
	hc := &http.Client{Timeout: time.Minute, Transport: &http.Transport{TLSClientConfig: tlsConf, ForceAttemptHTTP2: true}}
	resp, err := postEnroll(ctx, hc, strings.TrimSuffix(o.Server, "/")+"/agent/v1/enroll", body)
	if err != nil {
		return nil, fmt.Errorf("enroll with %s: %w", o.Server, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("enroll with %s: %s", o.Server, serverMessage(resp.StatusCode, b))
	}
	var e Enrollment
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, fmt.Errorf("enroll: the server's answer does not parse: %w", err)
	}
	cert, err := parseCert(e.Certificate)
	if err != nil {
		return nil, fmt.Errorf("enroll: the server's certificate: %w", err)
	}
	if pub, ok := cert.PublicKey.(*ecdsa.PublicKey); !ok || !pub.Equal(&key.PublicKey) {
		return nil, errors.New("enroll: the server signed a certificate for another key; refusing it")
	}
	if e.AgentID == "" || e.Site.MetadataURL == "" || len(e.Site.Root) == 0 {
		return nil, errors.New("enroll: the server's answer lacks the agent id or the site repository")
	}
	if got := tuf.RootFingerprint(e.Site.Root); got != siteRoot {
		return nil, fmt.Errorf("enroll: the server gave a site root %s, not the %s given with --site-root; refusing it (whoever runs that server is not the site you were told to join)", got, siteRoot)
	}
	for _, v := range e.Vendors {
		if err := catalog.CheckVendorName(v.Name); err != nil {
			return nil, fmt.Errorf("enroll: the server's answer: %w", err)
		}
	}
	e.Server, e.MachineID, e.EnrolledAt = o.Server, o.Facts.MachineID, o.Now().UTC()
	e.SiteRootFingerprint, e.VendorPins = siteRoot, pins
	// A new enrollment starts its TUF caches afresh: the roots and versions
	// of an earlier site (a server rebuilt from scratch) must not refuse
	// the new one's metadata.
	if err := os.RemoveAll(filepath.Join(o.StateDir, tufCacheDir)); err != nil {
		return nil, fmt.Errorf("enroll: clear the old TUF caches: %w", err)
	}
	// Nor does a full cycle on the old server count for the new one.
	if err := os.Remove(filepath.Join(o.StateDir, checkinFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("enroll: forget the last check-in: %w", err)
	}
	keyPEM, err := privateKeyPEM(key)
	if err != nil {
		return nil, err
	}
	if err := atomicfile.WriteFile(filepath.Join(o.StateDir, defaultKeyFile), keyPEM, 0o600); err != nil {
		return nil, err
	}
	if err := saveEnrollment(o.StateDir, &e); err != nil {
		return nil, err
	}
	return &e, nil
}

// maxEnrollWait bounds how long Enroll waits out 429 answers: the server
// limits enrollments per token (machines behind one NAT address enrolling
// at once) and failed attempts per address, and says how long to wait.
const maxEnrollWait = 10 * time.Minute

// postEnroll sends the enrollment, waiting and sending it again while the
// server answers 429 Too Many Requests, for at most maxEnrollWait in all.
func postEnroll(ctx context.Context, hc *http.Client, url string, body []byte) (*http.Response, error) {
	var waited time.Duration
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(req)
		if err != nil || resp.StatusCode != http.StatusTooManyRequests {
			return resp, err
		}
		wait := time.Second
		if secs, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && secs > 0 {
			wait = time.Duration(secs) * time.Second
		}
		// Up to half as long again at random, so that machines refused
		// together do not all come back in the same second.
		wait += time.Duration(mrand.Int64N(int64(wait/2) + 1))
		if waited+wait > maxEnrollWait {
			return resp, nil // the 429 itself, with the server's message
		}
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		waited += wait
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
	}
}

func saveEnrollment(dir string, e *Enrollment) error {
	b, err := json.MarshalIndent(e, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(dir, "enrollment.json"), append(b, '\n'), 0o600)
}

// LoadEnrollment reads what Enroll stored.
func LoadEnrollment(dir string) (*Enrollment, error) {
	b, err := os.ReadFile(filepath.Join(dir, "enrollment.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("this machine is not enrolled (no %s): run `bulwark agent enroll` with the command `bulwark server` printed", filepath.Join(dir, "enrollment.json"))
	}
	if err != nil {
		return nil, err
	}
	var e Enrollment
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, "enrollment.json"), err)
	}
	return &e, nil
}

// TLSConfig is the agent's mutual-TLS configuration: the site CA from
// enrollment as the only root, and the client certificate.
func (e *Enrollment) TLSConfig(dir string) (*tls.Config, error) {
	keyPEM, err := os.ReadFile(filepath.Join(dir, e.keyFile()))
	if err != nil {
		return nil, err
	}
	pair, err := tls.X509KeyPair([]byte(e.Certificate), keyPEM)
	if err != nil {
		return nil, fmt.Errorf("client certificate: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(e.CA)) {
		return nil, errors.New("enrollment: no site CA certificate")
	}
	e.removeStaleKeys(dir)
	e.id = newIdentity(&pair)
	id := e.id
	// The session cache lets the next check-in resume the TLS session (no
	// certificate exchange or signatures): most of a check-in's server CPU.
	// A renewal empties it: a resumed session carries the old certificate.
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12, CipherSuites: pki.CipherSuites(),
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return id.cur.Load(), nil },
		ClientSessionCache:   id}, nil
}

// sameCA reports whether caPEM is the CA with the pinned fingerprint.
func sameCA(caPEM, fingerprint string) bool {
	c, err := parseCert(caPEM)
	if err != nil {
		return false
	}
	want, err := pki.ParseFingerprint(fingerprint)
	if err != nil {
		return false
	}
	got, _ := pki.ParseFingerprint(pki.Fingerprint(c))
	return bytes.Equal(got, want)
}

// certValid reports whether the enrollment's client certificate is within
// its validity period at now.
func (e *Enrollment) certValid(now time.Time) bool {
	c, err := parseCert(e.Certificate)
	return err == nil && now.After(c.NotBefore) && now.Before(c.NotAfter)
}

func parseCert(p string) (*x509.Certificate, error) {
	block, _ := pem.Decode([]byte(p))
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("not a PEM certificate")
	}
	return x509.ParseCertificate(block.Bytes)
}

// serverMessage turns an error answer into a line for a person.
func serverMessage(code int, body []byte) string {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		return fmt.Sprintf("%s (HTTP %d)", e.Error, code)
	}
	s := strings.TrimSpace(string(body))
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return fmt.Sprintf("HTTP %d: %s", code, s)
}
