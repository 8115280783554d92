package tuf

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/bulwarkhq/bulwark/internal/atomicfile"
	"github.com/bulwarkhq/bulwark/internal/capread"
)

// A signingKey is one private key of a role, as kept in a key file.
type signingKey struct {
	path    string
	private ed25519.PrivateKey
	public  *metadata.Key
	id      string
}

func (k *signingKey) signer() (signature.Signer, error) {
	return signature.LoadSigner(k.private, crypto.Hash(0))
}

const pemType = "PRIVATE KEY"

// maxKeyFile caps a key file read (an Ed25519 PKCS #8 PEM is 119 bytes).
const maxKeyFile = 64 << 10

// generateKey creates an Ed25519 key and writes it to path (0600) in PKCS #8
// PEM, the form `openssl pkey` and most HSM import tools read.
func generateKey(path string) (*signingKey, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("encode key: %w", err)
	}
	if _, err := os.Stat(path); err == nil {
		return nil, fmt.Errorf("key file %s already exists; refusing to overwrite a key", path)
	}
	if err := atomicfile.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: pemType, Bytes: der}), 0o600); err != nil {
		return nil, err
	}
	return newSigningKey(path, priv)
}

func newSigningKey(path string, priv ed25519.PrivateKey) (*signingKey, error) {
	pub, err := metadata.KeyFromPublicKey(priv.Public())
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", path, err)
	}
	id, err := pub.ID()
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", path, err)
	}
	return &signingKey{path: path, private: priv, public: pub, id: id}, nil
}

// loadKey reads a key file written by generateKey. It refuses files that
// others can read: a leaked signing key is the one thing TUF cannot undo
// without a key rotation.
func loadKey(path string) (*signingKey, error) {
	data, err := capread.Secret(path, maxKeyFile)
	if err != nil {
		return nil, fmt.Errorf("load key: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != pemType {
		return nil, fmt.Errorf("load key %s: not a PEM %q block", path, pemType)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("load key %s: %w", path, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("load key %s: %T is not an Ed25519 key", path, k)
	}
	return newSigningKey(path, priv)
}

// loadRoleKeys loads every key file of a role that is present in dir: files
// named ROLE.key, or ROLE-N.key for roles with several keys. A root key moved
// offline is simply absent; callers check thresholds themselves.
func loadRoleKeys(dir, role string) ([]*signingKey, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("read key dir: %w", err)
	}
	var names []string
	for _, e := range entries {
		n := e.Name()
		if n == role+".key" || (strings.HasPrefix(n, role+"-") && strings.HasSuffix(n, ".key")) {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	var keys []*signingKey
	for _, n := range names {
		k, err := loadKey(filepath.Join(dir, n))
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// nextKeyPath returns a key file name for role in dir that is not taken yet.
func nextKeyPath(dir, role string) string {
	for i := 1; ; i++ {
		p := filepath.Join(dir, fmt.Sprintf("%s-%d.key", role, i))
		if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
			return p
		}
	}
}
