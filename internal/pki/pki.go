// Package pki is an update server's own small certificate authority: the
// site CA created at first start, the server's TLS certificate, client
// certificates for enrolled agents signed from their CSRs, and the
// "sha256:…" fingerprints that agents and admins pin.
//
// It must not talk to the network, and it never trusts a CSR's subject: the
// caller names the certificate (the agent id) and this package decides the
// usages and lifetime.
package pki

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/bulwarkhq/bulwark/internal/atomicfile"
)

// File names inside the TLS directory.
const (
	CACertFile     = "ca.crt"
	CAKeyFile      = "ca.key"
	ServerCertFile = "server.crt"
	ServerKeyFile  = "server.key"
)

// Lifetimes of what the CA issues.
const (
	CAValidity     = 10 * 365 * 24 * time.Hour
	ServerValidity = 2 * 365 * 24 * time.Hour
	AgentValidity  = 365 * 24 * time.Hour
)

// MaxCSRSize caps a PEM or DER certificate signing request.
const MaxCSRSize = 16 << 10

// ErrBadCSR is wrapped by every CSR rejection.
var ErrBadCSR = errors.New("bad certificate signing request")

// CA is the site certificate authority.
type CA struct {
	Cert    *x509.Certificate
	CertPEM []byte
	key     crypto.Signer
}

// Material is what a server needs for TLS: its CA and its own key pair.
type Material struct {
	CA     *CA
	Server tls.Certificate // leaf followed by the CA certificate
}

// Options configure LoadOrCreate.
type Options struct {
	Name  string   // CA common name; default "Bulwark site CA"
	Hosts []string // DNS names and IP addresses for the server certificate
	Now   func() time.Time
}

// LoadOrCreate loads the CA and server certificate from dir, creating
// whatever is missing (dir 0700, keys 0600). created reports whether a new
// CA was made.
func LoadOrCreate(dir string, o Options) (m *Material, created bool, err error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Name == "" {
		o.Name = "Bulwark site CA"
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, fmt.Errorf("tls dir: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, false, fmt.Errorf("tls dir: %w", err)
	}
	ca, err := loadCA(dir)
	if errors.Is(err, os.ErrNotExist) {
		ca, err = NewCA(o.Name, o.Now())
		if err != nil {
			return nil, false, err
		}
		if err := ca.save(dir); err != nil {
			return nil, false, err
		}
		created = true
		// A new CA makes any old server certificate useless.
		_ = os.Remove(filepath.Join(dir, ServerCertFile))
	} else if err != nil {
		return nil, false, err
	}
	certPath, keyPath := filepath.Join(dir, ServerCertFile), filepath.Join(dir, ServerKeyFile)
	if needsReissue(certPath, o.Hosts, o.Now()) {
		certPEM, keyPEM, err := ca.IssueServer(o.Hosts, o.Now())
		if err != nil {
			return nil, false, err
		}
		if err := atomicfile.WriteFile(keyPath, keyPEM, 0o600); err != nil {
			return nil, false, fmt.Errorf("write server key: %w", err)
		}
		if err := atomicfile.WriteFile(certPath, certPEM, 0o644); err != nil {
			return nil, false, fmt.Errorf("write server certificate: %w", err)
		}
	}
	pair, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		return nil, false, fmt.Errorf("load server certificate: %w", err)
	}
	pair.Certificate = append(pair.Certificate, ca.Cert.Raw)
	return &Material{CA: ca, Server: pair}, created, nil
}

// RenewBefore is how long before expiry a server certificate is made
// again at start. Agents pin the CA, not the server certificate, so a new
// one changes nothing for them.
const RenewBefore = 30 * 24 * time.Hour

// needsReissue reports whether the server certificate is missing,
// unreadable, near expiry, or lacks one of hosts (a name or address added
// since it was made).
func needsReissue(certPath string, hosts []string, now time.Time) bool {
	b, err := os.ReadFile(certPath)
	if err != nil {
		return true
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return true
	}
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil || now.Add(RenewBefore).After(cert.NotAfter) {
		return true
	}
	for _, h := range hosts {
		if h != "" && cert.VerifyHostname(h) != nil {
			return true
		}
	}
	return false
}

// NewCA makes a fresh CA with an ECDSA P-256 key.
func NewCA(name string, now time.Time) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("ca key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"Bulwark"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(CAValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("ca certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("ca certificate: %w", err)
	}
	return &CA{Cert: cert, CertPEM: pemBlock("CERTIFICATE", der), key: key}, nil
}

func (c *CA) save(dir string) error {
	der, err := x509.MarshalPKCS8PrivateKey(c.key)
	if err != nil {
		return fmt.Errorf("ca key: %w", err)
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, CAKeyFile), pemBlock("PRIVATE KEY", der), 0o600); err != nil {
		return fmt.Errorf("write ca key: %w", err)
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, CACertFile), c.CertPEM, 0o644); err != nil {
		return fmt.Errorf("write ca certificate: %w", err)
	}
	return nil
}

func loadCA(dir string) (*CA, error) {
	certPEM, err := os.ReadFile(filepath.Join(dir, CACertFile))
	if err != nil {
		return nil, err
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, CAKeyFile))
	if err != nil {
		return nil, fmt.Errorf("ca certificate present but its key is not: %w", err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("load site CA from %s: %w", dir, err)
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("load site CA: %w", err)
	}
	signer, ok := pair.PrivateKey.(crypto.Signer)
	if !ok || !cert.IsCA {
		return nil, fmt.Errorf("load site CA from %s: not a CA key pair", dir)
	}
	return &CA{Cert: cert, CertPEM: certPEM, key: signer}, nil
}

// IssueServer makes a server certificate for hosts (DNS names or IP
// addresses) and returns it and its key as PEM.
func (c *CA) IssueServer(hosts []string, now time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("server key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{CommonName: "bulwark server"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(ServerValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	if len(tmpl.DNSNames) > 0 {
		tmpl.Subject.CommonName = tmpl.DNSNames[0]
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.Cert, key.Public(), c.key)
	if err != nil {
		return nil, nil, fmt.Errorf("server certificate: %w", err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("server key: %w", err)
	}
	return pemBlock("CERTIFICATE", der), pemBlock("PRIVATE KEY", kder), nil
}

// ParseCSR reads a PEM (or DER) CSR, checks its self-signature and its key
// type (ECDSA P-256/P-384 or Ed25519).
func ParseCSR(data []byte) (*x509.CertificateRequest, error) {
	if len(data) > MaxCSRSize {
		return nil, fmt.Errorf("%w: %d bytes, over the %d byte limit", ErrBadCSR, len(data), MaxCSRSize)
	}
	der := data
	if b, _ := pem.Decode(data); b != nil {
		if b.Type != "CERTIFICATE REQUEST" {
			return nil, fmt.Errorf("%w: PEM block %q, want \"CERTIFICATE REQUEST\"", ErrBadCSR, b.Type)
		}
		der = b.Bytes
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadCSR, err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("%w: signature: %v", ErrBadCSR, err)
	}
	switch k := csr.PublicKey.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() && k.Curve != elliptic.P384() {
			return nil, fmt.Errorf("%w: ECDSA curve %s; use P-256 or P-384", ErrBadCSR, k.Curve.Params().Name)
		}
	case ed25519.PublicKey:
	default:
		return nil, fmt.Errorf("%w: key type %T; use ECDSA P-256/P-384 or Ed25519", ErrBadCSR, csr.PublicKey)
	}
	return csr, nil
}

// SignAgent issues a client certificate for csr's key, named agentID
// whatever the CSR asked for, valid for AgentValidity. It returns the PEM
// and the serial in hex.
func (c *CA) SignAgent(csr *x509.CertificateRequest, agentID string, now time.Time) (certPEM []byte, serial string, err error) {
	return c.SignAgentFor(csr, agentID, now, AgentValidity)
}

// SignAgentFor is SignAgent with a lifetime: the certificate is valid from
// now (back-dated by the clock skew it tolerates, at most a tenth of the
// lifetime) until now+lifetime.
func (c *CA) SignAgentFor(csr *x509.CertificateRequest, agentID string, now time.Time, lifetime time.Duration) (certPEM []byte, serial string, err error) {
	if lifetime <= 0 {
		return nil, "", fmt.Errorf("agent certificate lifetime %v: want a positive duration", lifetime)
	}
	sn := randomSerial()
	tmpl := &x509.Certificate{
		SerialNumber: sn,
		Subject:      pkix.Name{CommonName: agentID, OrganizationalUnit: []string{"bulwark agent"}},
		NotBefore:    now.Add(-min(time.Hour, lifetime/10)),
		NotAfter:     now.Add(lifetime),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.Cert, csr.PublicKey, c.key)
	if err != nil {
		return nil, "", fmt.Errorf("agent certificate: %w", err)
	}
	return pemBlock("CERTIFICATE", der), SerialString(sn), nil
}

// Pool is a certificate pool holding only this CA.
func (c *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(c.Cert)
	return p
}

// SerialString is a certificate serial as lowercase hex.
func SerialString(n *big.Int) string { return hex.EncodeToString(n.Bytes()) }

// Fingerprint is "sha256:" and the hex SHA-256 of a certificate's DER bytes.
func Fingerprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// ParseFingerprint checks a "sha256:<64 hex>" fingerprint and returns the
// digest.
func ParseFingerprint(s string) ([]byte, error) {
	h, ok := strings.CutPrefix(strings.ToLower(strings.TrimSpace(s)), "sha256:")
	if !ok {
		return nil, fmt.Errorf("fingerprint %q: want sha256:<64 hex digits>", s)
	}
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != sha256.Size {
		return nil, fmt.Errorf("fingerprint %q: want sha256:<64 hex digits>", s)
	}
	return b, nil
}

// PinnedClientConfig is a TLS client configuration that trusts exactly the
// CA whose fingerprint is pin, found among the certificates the server
// presents, and checks the server certificate chains to it for server use.
// Host names are not checked: the pin is the identity.
func PinnedClientConfig(pin string) (*tls.Config, error) {
	want, err := ParseFingerprint(pin)
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		CipherSuites:       CipherSuites(),
		InsecureSkipVerify: true, // replaced by the pin check below
		VerifyConnection: func(cs tls.ConnectionState) error {
			var ca *x509.Certificate
			for _, c := range cs.PeerCertificates {
				sum := sha256.Sum256(c.Raw)
				if bytes.Equal(sum[:], want) && c.IsCA {
					ca = c
				}
			}
			if ca == nil || len(cs.PeerCertificates) == 0 {
				return fmt.Errorf("server presented no CA certificate with fingerprint %s", pin)
			}
			pool := x509.NewCertPool()
			pool.AddCert(ca)
			_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{
				Roots:     pool,
				KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			})
			if err != nil {
				return fmt.Errorf("server certificate does not chain to the pinned CA: %w", err)
			}
			return nil
		},
	}, nil
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func randomSerial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return n.Add(n, big.NewInt(1))
}

// CipherSuites are the TLS 1.2 suites Bulwark offers and accepts: ECDHE
// with AEAD ciphers only (AES-GCM, ChaCha20-Poly1305); no CBC, no SHA-1
// MACs, no RSA key exchange. TLS 1.3 suites are not configurable and are
// all AEAD.
func CipherSuites() []uint16 {
	return []uint16{
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
		tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	}
}
