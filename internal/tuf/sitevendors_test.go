package tuf

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/bulwarkhq/bulwark/internal/approval"
	"github.com/bulwarkhq/bulwark/internal/fetch"
)

// The site root signs the vendor list with a key that is never in the site
// repository: the repository keeps working without it, a changed list is the
// next root version signed offline, and no root signed with the online keys
// is accepted, by the server or by a client.
func TestSiteRootVendorList(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)}
	dir := filepath.Join(t.TempDir(), "site")
	offline := filepath.Join(t.TempDir(), "site-root.key")
	debian := "sha256:" + strings.Repeat("a", 64)
	site, err := InitSite(dir, SiteInitOptions{Name: "hq", Vendors: map[string]string{"debian": debian}, RootKeyOut: offline}, Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer site.Close()
	tr := &testRepo{t: t, dir: dir, repo: site.r, clock: clk}
	if on, err := site.RootKeyOnDisk(); err != nil || on {
		t.Fatalf("root key on disk: %v %v", on, err)
	}
	if files, _ := site.RootKeyFiles(); len(files) != 0 {
		t.Fatalf("root key files in the repository: %v", files)
	}
	// The server works with online keys only.
	if err := site.SetApprovals(ctx, &approval.Document{Group: "web"}); err != nil {
		t.Fatal(err)
	}
	if _, err := site.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, tr, newServer(t, dir), "", fetch.Limits{})
	if err := c.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if v, err := c.TrustedVendors(); err != nil || len(v) != 1 || v["debian"] != debian {
		t.Fatalf("first root's vendors: %v %v", v, err)
	}

	current := func() []byte { return tr.read("metadata/root.json") }
	evil := "sha256:" + strings.Repeat("e", 64)
	addEvil := func(v map[string]string) error { v["evil"] = evil; return nil }
	next, err := SignSiteRoot(current(), []string{offline}, time.Duration(DefaultExpiry.Root), clk.Now(), addEvil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := site.PublishRoot(next); err != nil {
		t.Fatal(err)
	}
	if err := c.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if v, _ := c.TrustedVendors(); v["evil"] != evil || v["debian"] != debian {
		t.Fatalf("after the signed change: %v", v)
	}
	if _, err := site.PublishRoot(next); err == nil || !strings.Contains(err.Error(), "the next version is 3") {
		t.Fatalf("the same version published twice: %v", err)
	}

	// Roots the attacker can make with what the server holds.
	online := func(roles ...string) []*signingKey {
		var keys []*signingKey
		for _, r := range roles {
			k, err := loadKey(filepath.Join(dir, KeysDir, r+".key"))
			if err != nil {
				t.Fatal(err)
			}
			keys = append(keys, k)
		}
		return keys
	}
	forge := func(edit func(*metadata.Metadata[metadata.RootType]), keys []*signingKey) []byte {
		root, err := metadata.Root().FromBytes(current())
		if err != nil {
			t.Fatal(err)
		}
		v, _ := RootVendors(root)
		v["attacker"] = "sha256:" + strings.Repeat("b", 64)
		if err := setRootVendors(root, v); err != nil {
			t.Fatal(err)
		}
		root.Signed.Version++
		edit(root)
		p := filepath.Join(t.TempDir(), "root.json")
		if err := signAndWrite(p, root, keys); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(p)
		return b
	}
	other, err := generateKey(filepath.Join(t.TempDir(), "other.key"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, want string
		root       []byte
	}{
		{"signed with the online keys", "not signed by the root keys of version 2",
			forge(func(*metadata.Metadata[metadata.RootType]) {}, online("targets", "snapshot", "timestamp"))},
		{"the online keys made root keys", "not signed by the root keys of version 2", forge(func(r *metadata.Metadata[metadata.RootType]) {
			r.Signed.Roles[metadata.ROOT].KeyIDs = []string{online("targets")[0].id}
		}, online("targets"))},
		{"signed with a key of another root", "not signed by the root keys of version 2", forge(func(*metadata.Metadata[metadata.RootType]) {}, []*signingKey{other})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := site.PublishRoot(tc.root); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("server accepted it: %v", err)
			}
			// Written straight to the disk the attacker holds: the client
			// refuses it and keeps the signed list.
			os.WriteFile(filepath.Join(dir, MetadataDir, "3.root.json"), tc.root, 0o644)
			defer os.Remove(filepath.Join(dir, MetadataDir, "3.root.json"))
			if err := c.Refresh(ctx); err == nil {
				t.Fatal("client accepted a root not signed by the site root key")
			}
			if v, _ := c.TrustedVendors(); v["attacker"] != "" {
				t.Fatalf("client trusts %v", v)
			}
		})
	}

	// Signing needs the site's root key, checks the current root and
	// refuses bad names.
	if _, err := SignSiteRoot(current(), []string{other.path}, time.Hour, clk.Now(), addEvil); err == nil || !strings.Contains(err.Error(), "is not a root key of this site") {
		t.Fatalf("signed with another key: %v", err)
	}
	tampered := strings.Replace(string(current()), debian, evil, 1)
	if _, err := SignSiteRoot([]byte(tampered), []string{offline}, time.Hour, clk.Now(), addEvil); err == nil || !strings.Contains(err.Error(), "does not verify") {
		t.Fatalf("a root the server changed was signed: %v", err)
	}
	if _, err := SignSiteRoot(current(), []string{offline}, time.Hour, clk.Now(), func(v map[string]string) error { v["../x"] = evil; return nil }); err == nil || !strings.Contains(err.Error(), `vendor name "../x"`) {
		t.Fatalf("bad name: %v", err)
	}
	// A new root that changes the keys the server signs with is refused.
	b, err := SignSiteRoot(current(), []string{offline}, time.Hour, clk.Now(), addEvil)
	if err != nil {
		t.Fatal(err)
	}
	root, _ := metadata.Root().FromBytes(b)
	root.Signed.Roles[metadata.TIMESTAMP].KeyIDs = []string{other.id}
	root.Signed.Keys[other.id] = other.public
	k, _ := loadKey(offline)
	p := filepath.Join(t.TempDir(), "r.json")
	if err := signAndWrite(p, root, []*signingKey{k}); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(p)
	if _, err := site.PublishRoot(b); err == nil || !strings.Contains(err.Error(), "changes the timestamp keys") {
		t.Fatalf("online keys changed: %v", err)
	}
}
