package server

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/bulwarkhq/bulwark/internal/tuf"
)

// A first start killed after the site root was written but before the site
// repository was complete starts over on the next start, with the root key
// it already wrote to --site-root-key-out; a key file that is not from an
// interrupted first start is never overwritten or reused.
func TestFirstStartInterruptedAfterSiteRoot(t *testing.T) {
	ctx := context.Background()
	v := newVendorRepo(t, "example")
	data := filepath.Join(t.TempDir(), "data")
	key := filepath.Join(t.TempDir(), "offline", "site-root.key")
	cfg := Config{DataDir: data, SiteRootKeyOut: key, Vendors: []HostedVendor{{Name: "example", Dir: v.dir}}}
	s, first, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if first == nil || first.SiteRootKey != key || first.SiteRootKeyOnServer || s.SiteRootKeyOnDisk() {
		t.Fatalf("first start: %+v, key on disk %v", first, s.SiteRootKeyOnDisk())
	}
	if got := s.repos["example"]; s.siteTrust(got.name, got.rootSum) != trustSigned {
		t.Fatalf("the vendor the server first started with is %s, want signed", s.siteTrust(got.name, got.rootSum))
	}
	s.Close()
	// Back to the moment of the kill: the site's config and the data
	// format marker are not written yet.
	os.Remove(filepath.Join(data, formatFile))
	os.Remove(filepath.Join(data, siteDir, "bulwark-repo.json"))
	keyBefore, _ := os.ReadFile(key)
	s, first, err = Open(ctx, cfg)
	if err != nil {
		t.Fatalf("start after an interrupted first start: %v", err)
	}
	defer s.Close()
	if keyAfter, _ := os.ReadFile(key); first == nil || string(keyAfter) != string(keyBefore) {
		t.Fatal("the root key written by the interrupted start was not used again")
	}
	if !tuf.IsComplete(filepath.Join(data, siteDir)) {
		t.Fatal("site repository not made again")
	}
	// A fresh data directory never takes an existing key file.
	if _, _, err := Open(ctx, Config{DataDir: filepath.Join(t.TempDir(), "other"), SiteRootKeyOut: key}); err == nil {
		t.Fatal("a new site took an existing key file")
	}
}
