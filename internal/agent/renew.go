package agent

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
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/bulwarkhq/bulwark/internal/atomicfile"
	"github.com/bulwarkhq/bulwark/internal/wire"
)

// defaultKeyFile is the client key written at enrollment; renewals write
// client-<unix time>.key and name it in enrollment.json.
const defaultKeyFile = "client.key"

// identity is the client certificate the agent presents and the TLS
// sessions made with it; a renewal swaps the certificate and drops the
// sessions while connections are open.
type identity struct {
	cur      atomic.Pointer[tls.Certificate]
	sessions atomic.Pointer[tls.ClientSessionCache]
}

func newIdentity(pair *tls.Certificate) *identity {
	id := &identity{}
	id.cur.Store(pair)
	id.dropSessions()
	return id
}

// renew switches to pair and forgets the sessions of the old certificate.
func (id *identity) renew(pair *tls.Certificate) {
	id.cur.Store(pair)
	id.dropSessions()
}

func (id *identity) dropSessions() {
	c := tls.NewLRUClientSessionCache(16)
	id.sessions.Store(&c)
}

// Get and Put make identity the tls.ClientSessionCache of the agent's
// client.
func (id *identity) Get(key string) (*tls.ClientSessionState, bool) {
	return (*id.sessions.Load()).Get(key)
}

func (id *identity) Put(key string, cs *tls.ClientSessionState) {
	(*id.sessions.Load()).Put(key, cs)
}

var _ tls.ClientSessionCache = (*identity)(nil)

func (e *Enrollment) keyFile() string {
	if e.KeyFile != "" {
		return e.KeyFile
	}
	return defaultKeyFile
}

// CertValidity returns when the agent's client certificate became valid and
// when it expires.
func (e *Enrollment) CertValidity() (notBefore, notAfter time.Time, err error) {
	c, err := parseCert(e.Certificate)
	if err != nil {
		return time.Time{}, time.Time{}, fmt.Errorf("client certificate: %w", err)
	}
	return c.NotBefore, c.NotAfter, nil
}

// RenewalDue is when an agent renews a certificate valid from notBefore to
// notAfter: at two thirds of its lifetime.
func RenewalDue(notBefore, notAfter time.Time) time.Time {
	return notBefore.Add(notAfter.Sub(notBefore) * 2 / 3)
}

// ErrCertExpired means the client certificate has expired: the server
// refuses the TLS handshake, so the machine must enroll again.
var ErrCertExpired = errors.New("client certificate expired")

// CertValidity is the validity of the certificate the client presents.
func (c *ServerClient) CertValidity() (notBefore, notAfter time.Time, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.e.CertValidity()
}

// RenewIfDue renews the client certificate over mutual TLS with the current
// one when two thirds of its lifetime have passed: a new key made here, a
// new certificate from the server, both kept in dir (the key 0600, then
// enrollment.json naming it, in one atomic rename), and the TLS client
// switched to them. Before that it does nothing. An expired certificate is
// ErrCertExpired with the way out in the message.
func (c *ServerClient) RenewIfDue(ctx context.Context, dir string, now time.Time) (renewed bool, err error) {
	nb, na, err := c.CertValidity()
	if err != nil {
		return false, err
	}
	if !now.Before(na) {
		return false, fmt.Errorf("%w on %s: enroll this machine again with `bulwark agent enroll` and a new enrollment token (docs/ADMIN.md, \"An agent whose certificate expired\")", ErrCertExpired, na.UTC().Format(time.RFC3339))
	}
	if now.Before(RenewalDue(nb, na)) {
		return false, nil
	}
	key, csrPEM, err := newKey(c.e.AgentID)
	if err != nil {
		return false, err
	}
	body, _ := json.Marshal(wire.RenewRequest{CSR: csrPEM})
	url := strings.TrimSuffix(c.e.CheckinURL, "/checkin") + "/renew"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(wire.MachineIDHeader, c.machineID)
	resp, err := c.hc.Do(req)
	if err != nil {
		return false, fmt.Errorf("renew certificate: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return false, fmt.Errorf("renew certificate: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("renew certificate: %s", serverMessage(resp.StatusCode, b))
	}
	var rr wire.RenewResponse
	if err := json.Unmarshal(b, &rr); err != nil {
		return false, fmt.Errorf("renew certificate: the server's answer does not parse: %w", err)
	}
	if err := c.e.checkIssued(rr.Certificate, &key.PublicKey, now); err != nil {
		return false, fmt.Errorf("renew certificate: %w", err)
	}
	keyPEM, err := privateKeyPEM(key)
	if err != nil {
		return false, err
	}
	pair, err := tls.X509KeyPair([]byte(rr.Certificate), keyPEM)
	if err != nil {
		return false, fmt.Errorf("renew certificate: %w", err)
	}
	// The new key first, under a new name; then enrollment.json, which
	// names it, in one atomic rename. A crash in between leaves the old
	// pair in use and an unused key that the next start removes.
	oldKey, newKey := c.e.keyFile(), "client-"+strconv.FormatInt(now.UnixNano(), 10)+".key"
	if err := atomicfile.WriteFile(filepath.Join(dir, newKey), keyPEM, 0o600); err != nil {
		return false, err
	}
	c.mu.Lock()
	c.e.Certificate, c.e.KeyFile = rr.Certificate, newKey
	err = saveEnrollment(dir, c.e)
	c.mu.Unlock()
	if err != nil {
		return false, err
	}
	os.Remove(filepath.Join(dir, oldKey))
	if c.e.id != nil {
		c.e.id.renew(&pair)
	}
	// Connections made with the old certificate close; the next request
	// shows the server the new one, which retires the old.
	c.hc.CloseIdleConnections()
	return true, nil
}

// checkIssued checks a certificate the server issued to this agent: for
// pub, named for this agent, for client authentication, from the pinned
// site CA, valid now.
func (e *Enrollment) checkIssued(certPEM string, pub *ecdsa.PublicKey, now time.Time) error {
	cert, err := parseCert(certPEM)
	if err != nil {
		return fmt.Errorf("the server's certificate: %w", err)
	}
	if k, ok := cert.PublicKey.(*ecdsa.PublicKey); !ok || !k.Equal(pub) {
		return errors.New("the server signed a certificate for another key; refusing it")
	}
	if cert.Subject.CommonName != e.AgentID {
		return fmt.Errorf("the server's certificate names %q, not this agent (%s); refusing it", cert.Subject.CommonName, e.AgentID)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(e.CA)) {
		return errors.New("enrollment: no site CA certificate")
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return fmt.Errorf("the server's certificate: %w", err)
	}
	return nil
}

// removeStaleKeys deletes client keys that enrollment.json does not name:
// what a crash during a renewal left behind.
func (e *Enrollment) removeStaleKeys(dir string) {
	names, _ := filepath.Glob(filepath.Join(dir, "client-*.key"))
	for _, n := range names {
		if filepath.Base(n) != e.keyFile() {
			os.Remove(n)
		}
	}
}

// SetCertValidity records the client certificate's validity for Status.
func (d *Daemon) SetCertValidity(notBefore, notAfter time.Time) {
	d.statusMu.Lock()
	d.status.CertNotAfter, d.status.CertRenewal = notAfter, RenewalDue(notBefore, notAfter)
	d.statusMu.Unlock()
}

// newKey makes the agent's client key (ECDSA P-256; it never leaves the
// machine) and a PEM certificate request for it.
func newKey(commonName string) (*ecdsa.PrivateKey, string, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, "", err
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: commonName}}, key)
	if err != nil {
		return nil, "", err
	}
	return key, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})), nil
}

func privateKeyPEM(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}
