package media

import (
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bulwarkhq/bulwark/internal/approval"
	"github.com/bulwarkhq/bulwark/internal/debtest"
	"github.com/bulwarkhq/bulwark/internal/tuf"
)

// fixture is a vendor repository with real .deb updates and a site
// repository that approves some of them for a group.
type fixture struct {
	t       testing.TB
	vendor  string // vendor repository directory
	site    string // site repository directory
	tmp     string
	vendorR *tuf.Repository
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{t: t, tmp: t.TempDir()}
	f.vendor = filepath.Join(f.tmp, "vendor")
	r, err := tuf.Init(f.vendor, tuf.InitOptions{Name: "debian", BinBits: 3}, tuf.Options{})
	if err != nil {
		t.Fatal(err)
	}
	f.vendorR = r
	t.Cleanup(func() { r.Close() })
	applies := "applies_to:\n  - not: {deb: {package: libfoo, version_ge: \"1.1\"}}\n"
	f.publish("BW-1", debtest.Package{Name: "libfoo", Version: "1.1", Files: map[string]string{"/usr/lib/libfoo.txt": "1.1\n"}}, "classification: security\nreboot: required\n"+applies)
	f.publish("BW-2", debtest.Package{Name: "libfoo", Version: "1.2", Files: map[string]string{"/usr/lib/libfoo.txt": "1.2\n"}}, "classification: security\nreboot: required\nsupersedes: [BW-1]\n"+applies)
	f.publish("BW-3", debtest.Package{Name: "bar", Version: "2.0", Files: map[string]string{"/usr/bin/bar-version": "2.0\n"}}, "classification: security\nreboot: never\n")
	f.publish("BW-4", debtest.Package{Name: "feature", Version: "1.0", Files: map[string]string{"/usr/share/feature": "x\n"}}, "classification: feature\nreboot: never\n")

	f.site = filepath.Join(f.tmp, "site")
	s, err := tuf.InitSite(f.site, tuf.SiteInitOptions{}, tuf.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	doc := &approval.Document{Group: "web"}
	for _, id := range []string{"BW-2", "BW-3"} {
		doc.Updates = append(doc.Updates, f.approval(id))
	}
	if err := s.SetApprovals(context.Background(), doc); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) publish(id string, p debtest.Package, extra string) {
	f.t.Helper()
	dir := f.t.TempDir()
	deb := debtest.Build(f.t, dir, p)
	y := filepath.Join(dir, id+".yaml")
	os.WriteFile(y, []byte(fmt.Sprintf("id: %s\ntitle: %s %s\nproduct: debian-12\nseverity: critical\nreleased: 2026-11-%02d\ninstaller: {type: deb}\npayloads: [{file: %s}]\n%s",
		id, p.Name, p.Version, map[bool]int{true: 20, false: 10}[id == "BW-4"], filepath.Base(deb), extra)), 0o644)
	if _, err := f.vendorR.Publish(context.Background(), y, tuf.PublishOptions{}); err != nil {
		f.t.Fatal(err)
	}
}

// approval reads an update's targets through a verifying client, as the
// server does when an admin approves it.
func (f *fixture) approval(id string) approval.Approval {
	f.t.Helper()
	ctx := context.Background()
	c, err := tuf.NewClient(tuf.ClientConfig{TrustedRoot: f.root(f.vendor), MetadataURL: "file://" + filepath.Join(f.vendor, "metadata"),
		TargetsURL: "file://" + filepath.Join(f.vendor, "targets"), CacheDir: f.t.TempDir()})
	if err != nil {
		f.t.Fatal(err)
	}
	info, err := c.Update(ctx, id)
	if err != nil {
		f.t.Fatal(err)
	}
	a := approval.Approval{Vendor: "debian", ID: id, Action: approval.ActionInstall, Rollout: 100,
		Targets: []approval.Target{{Path: tuf.UpdatePath(id), Length: info.Target.Length, SHA256: hex.EncodeToString(info.Target.Hashes["sha256"])}}}
	for _, p := range info.Update.Payloads {
		a.Targets = append(a.Targets, approval.Target{Path: tuf.PayloadPath(id, p.File), Length: p.Length, SHA256: p.SHA256})
	}
	return a
}

func (f *fixture) root(dir string) []byte {
	f.t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "metadata", "1.root.json"))
	if err != nil {
		f.t.Fatal(err)
	}
	return b
}

func (f *fixture) pins() map[string]string {
	return map[string]string{"debian": tuf.RootFingerprint(f.root(f.vendor))}
}

// create makes media of the fixture with sel into a new directory.
func (f *fixture) create(sel Selection) string {
	f.t.Helper()
	return f.createISO(sel, "")
}

// createISO is create that also writes the image iso ("" for none).
func (f *fixture) createISO(sel Selection, iso string) string {
	f.t.Helper()
	out := filepath.Join(f.f(), "media")
	o := CreateOptions{Out: out, Vendors: []Source{{Name: "debian", Dir: f.vendor, Root: f.root(f.vendor)}}, Select: sel, ISO: iso}
	if len(sel.Groups) > 0 {
		o.Site = &Source{Name: "site", Dir: f.site, Root: f.root(f.site)}
	}
	if _, err := Create(context.Background(), o); err != nil {
		f.t.Fatal(err)
	}
	return out
}

func (f *fixture) f() string { return f.t.TempDir() }

// copyTree copies a media directory so a test can damage the copy.
func copyTree(t testing.TB, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "copy")
	err := filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if fi.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// findFile returns the one media file under dir whose path contains all of
// the parts.
func findFile(t testing.TB, dir string, parts ...string) string {
	t.Helper()
	var found []string
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			ok := true
			for _, s := range parts {
				ok = ok && strings.Contains(p, s)
			}
			if ok {
				found = append(found, p)
			}
		}
		return nil
	})
	if len(found) != 1 {
		t.Fatalf("files matching %v: %v", parts, found)
	}
	return found[0]
}
