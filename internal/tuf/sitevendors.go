package tuf

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/bulwarkhq/bulwark/internal/atomicfile"
	"github.com/bulwarkhq/bulwark/internal/catalog"
)

// The site's trusted vendors live in the signed part of the site's root
// metadata, in one extra field: {"bulwark_vendors": {"NAME": "sha256:…"}},
// each vendor's name and the SHA-256 of its first root
// (metadata/1.root.json). Only the root keys sign a root, and the site root
// key is kept off the server, so the online server cannot add a vendor or
// change a vendor's root: a changed list is a new root version that clients
// accept only when a threshold of the previous root's keys signed it (TUF
// root rotation), with the same rollback and expiry checks as any root.
// go-tuf keeps fields it does not know in the signed bytes, so the list is
// covered by the root's signatures and by every client's root chain.
const vendorsField = "bulwark_vendors"

// RootFingerprint is how a root is pinned: "sha256:" and the hex SHA-256 of
// its bytes.
func RootFingerprint(root []byte) string {
	sum := sha256.Sum256(root)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// ParseRootFingerprint checks a root fingerprint, "sha256:<64 hex>", and
// returns it in the form RootFingerprint writes.
func ParseRootFingerprint(s string) (string, error) {
	h, ok := strings.CutPrefix(strings.ToLower(strings.TrimSpace(s)), "sha256:")
	if b, err := hex.DecodeString(h); !ok || err != nil || len(b) != sha256.Size {
		return "", fmt.Errorf("root fingerprint %q: want sha256:<64 hex digits> (the SHA-256 of metadata/1.root.json)", s)
	}
	return "sha256:" + h, nil
}

// vendorEntry checks one entry of a vendor list and returns the
// fingerprint in its canonical form.
func vendorEntry(name string, fp any) (string, error) {
	if err := catalog.CheckVendorName(name); err != nil {
		return "", err
	}
	s, ok := fp.(string)
	if !ok {
		return "", fmt.Errorf("vendor %s: root fingerprint is a %T, not a string", name, fp)
	}
	v, err := ParseRootFingerprint(s)
	if err != nil {
		return "", fmt.Errorf("vendor %s: %w", name, err)
	}
	return v, nil
}

// RootVendors returns the vendor list a site root signs: name → root
// fingerprint. A root without the field lists no vendor.
func RootVendors(root *metadata.Metadata[metadata.RootType]) (map[string]string, error) {
	out := map[string]string{}
	raw, ok := root.Signed.UnrecognizedFields[vendorsField]
	if !ok {
		return out, nil
	}
	m, ok := raw.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("site root version %d: %s is a %T, not an object of name → root fingerprint", root.Signed.Version, vendorsField, raw)
	}
	for name, fp := range m {
		v, err := vendorEntry(name, fp)
		if err != nil {
			return nil, fmt.Errorf("site root version %d: %s: %w", root.Signed.Version, vendorsField, err)
		}
		out[name] = v
	}
	return out, nil
}

func setRootVendors(root *metadata.Metadata[metadata.RootType], vendors map[string]string) error {
	m := map[string]any{}
	for name, fp := range vendors {
		v, err := vendorEntry(name, fp)
		if err != nil {
			return err
		}
		m[name] = v
	}
	if root.Signed.UnrecognizedFields == nil {
		root.Signed.UnrecognizedFields = map[string]any{}
	}
	root.Signed.UnrecognizedFields[vendorsField] = m
	return nil
}

// TrustedRoot is the newest root the last Refresh verified.
func (c *Client) TrustedRoot() (*metadata.Metadata[metadata.RootType], error) {
	if c.up == nil {
		return nil, errors.New("tuf client: not refreshed yet")
	}
	return c.up.GetTrustedMetadataSet().Root, nil
}

// FirstRootFingerprint is the fingerprint of the root this client was
// given to start from; every later root chains from it.
func (c *Client) FirstRootFingerprint() string { return RootFingerprint(c.cfg.TrustedRoot) }

// TrustedVendors is the vendor list of the site root the last Refresh
// verified.
func (c *Client) TrustedVendors() (map[string]string, error) {
	root, err := c.TrustedRoot()
	if err != nil {
		return nil, err
	}
	return RootVendors(root)
}

// IsComplete reports whether dir holds a repository whose init finished:
// Init writes bulwark-repo.json last.
func IsComplete(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, configFile))
	return err == nil
}

// FirstRoot is the site's first root (metadata/1.root.json): agents pin its
// fingerprint and walk the root chain from it.
func (s *SiteRepository) FirstRoot() ([]byte, error) {
	return os.ReadFile(s.r.metaPath("1.root.json"))
}

// Vendors is the vendor list of the site's current root.
func (s *SiteRepository) Vendors() (map[string]string, error) {
	root, err := s.r.latestRoot()
	if err != nil {
		return nil, err
	}
	return RootVendors(root)
}

// RootKeyOnDisk reports whether a key that can sign the site's root is in
// the repository's keys/ directory, where whoever holds the server's disk
// can use it.
func (s *SiteRepository) RootKeyOnDisk() (bool, error) {
	root, err := s.r.latestRoot()
	if err != nil {
		return false, err
	}
	keys, err := loadRoleKeys(filepath.Join(s.r.dir, KeysDir), metadata.ROOT)
	if err != nil {
		return false, err
	}
	for _, k := range keys {
		if slices.Contains(root.Signed.Roles[metadata.ROOT].KeyIDs, k.id) {
			return true, nil
		}
	}
	return false, nil
}

// SignSiteRoot makes the next version of a site root with its vendor list
// changed by edit, signed with the root key files given (kept offline, on
// the administrator's machine). cur must verify with its own root keys,
// and the keys given must be root keys of it reaching the threshold: a
// server cannot hand over a root of its own making to be signed.
func SignSiteRoot(cur []byte, keyFiles []string, expiry time.Duration, now time.Time, edit func(vendors map[string]string) error) ([]byte, error) {
	root, err := metadata.Root().FromBytes(cur)
	if err != nil {
		return nil, fmt.Errorf("site root: %w", err)
	}
	if err := root.VerifyDelegate(metadata.ROOT, root); err != nil {
		return nil, fmt.Errorf("site root version %d does not verify with its own root keys: %w", root.Signed.Version, err)
	}
	role := root.Signed.Roles[metadata.ROOT]
	var keys []*signingKey
	for _, f := range keyFiles {
		k, err := loadKey(f)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(role.KeyIDs, k.id) {
			return nil, fmt.Errorf("key %s (id %.16s…) is not a root key of this site (root version %d); give the file written at the server's first start", f, k.id, root.Signed.Version)
		}
		keys = append(keys, k)
	}
	if len(keys) < role.Threshold {
		return nil, fmt.Errorf("site root: %d of the %d root keys needed given", len(keys), role.Threshold)
	}
	vendors, err := RootVendors(root)
	if err != nil {
		return nil, err
	}
	if err := edit(vendors); err != nil {
		return nil, err
	}
	if err := setRootVendors(root, vendors); err != nil {
		return nil, err
	}
	root.Signed.Version++
	root.Signed.Expires = now.UTC().Add(expiry)
	root.ClearSignatures()
	for _, k := range keys {
		sg, err := k.signer()
		if err != nil {
			return nil, err
		}
		if _, err := root.Sign(sg); err != nil {
			return nil, fmt.Errorf("sign site root: %w", err)
		}
	}
	return root.ToBytes(false)
}

// PublishRoot makes b the site's next root version after checking it as
// every client will: the next version, signed by a threshold of the
// current root's keys and of its own, not expired, with a well-formed
// vendor list. It must keep the online keys (targets, snapshot, timestamp)
// the server signs with.
func (s *SiteRepository) PublishRoot(b []byte) (*metadata.Metadata[metadata.RootType], error) {
	if len(b) > maxRootSize {
		return nil, fmt.Errorf("site root: %d bytes, over the %d byte limit", len(b), maxRootSize)
	}
	next, err := metadata.Root().FromBytes(b)
	if err != nil {
		return nil, fmt.Errorf("site root: %w", err)
	}
	unlock, err := s.r.writeLock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	cur, err := s.r.latestRoot()
	if err != nil {
		return nil, err
	}
	if next.Signed.Version != cur.Signed.Version+1 {
		return nil, fmt.Errorf("site root version %d: the next version is %d", next.Signed.Version, cur.Signed.Version+1)
	}
	if err := cur.VerifyDelegate(metadata.ROOT, next); err != nil {
		return nil, fmt.Errorf("site root version %d is not signed by the root keys of version %d: %w", next.Signed.Version, cur.Signed.Version, err)
	}
	if err := next.VerifyDelegate(metadata.ROOT, next); err != nil {
		return nil, fmt.Errorf("site root version %d is not signed by its own root keys: %w", next.Signed.Version, err)
	}
	if next.Signed.IsExpired(s.r.now()) {
		return nil, fmt.Errorf("site root version %d expired on %s", next.Signed.Version, next.Signed.Expires.Format(time.RFC3339))
	}
	for _, role := range []string{metadata.TARGETS, metadata.SNAPSHOT, metadata.TIMESTAMP} {
		a, b := cur.Signed.Roles[role], next.Signed.Roles[role]
		if b == nil || a.Threshold != b.Threshold || !slices.Equal(slices.Sorted(slices.Values(a.KeyIDs)), slices.Sorted(slices.Values(b.KeyIDs))) {
			return nil, fmt.Errorf("site root version %d changes the %s keys; rotate online keys on the server (`bulwark repo rotate`)", next.Signed.Version, role)
		}
	}
	if _, err := RootVendors(next); err != nil {
		return nil, err
	}
	name := s.r.metaPath(fmt.Sprintf("%d.root.json", next.Signed.Version))
	if _, err := os.Lstat(name); err == nil {
		return nil, fmt.Errorf("site root version %d: %s already exists", next.Signed.Version, name)
	}
	if err := atomicfile.WriteFile(name, b, 0o644); err != nil {
		return nil, err
	}
	if err := atomicfile.WriteFile(s.r.metaPath("root.json"), b, 0o644); err != nil {
		return nil, err
	}
	return next, nil
}

// SortedVendorNames lists a vendor list's names in order.
func SortedVendorNames(v map[string]string) []string { return slices.Sorted(maps.Keys(v)) }
