package tuf

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/approval"
	"github.com/bulwarkhq/bulwark/internal/fetch"
)

func newTestSite(t *testing.T) (*SiteRepository, *testRepo) {
	t.Helper()
	clk := &clock{t: time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)}
	dir := filepath.Join(t.TempDir(), "site")
	s, err := InitSite(dir, SiteInitOptions{Name: "hq"}, Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, &testRepo{t: t, dir: dir, repo: s.r, clock: clk}
}

func TestSiteApprovalsSignedAndVerified(t *testing.T) {
	site, tr := newTestSite(t)
	ctx := context.Background()
	doc := &approval.Document{Group: "web", Updates: []approval.Approval{{
		Vendor: "debian", ID: "BW-1", Action: approval.ActionInstall, Rollout: 50,
		Targets: []approval.Target{{Path: "updates/BW-1/update.json", Length: 12, SHA256: strings.Repeat("ab", 32)}},
	}}}
	if err := site.SetApprovals(ctx, doc); err != nil {
		t.Fatal(err)
	}
	ts := tr.read("metadata/timestamp.json")
	if err := site.SetApprovals(ctx, doc); err != nil {
		t.Fatal(err)
	}
	if string(tr.read("metadata/timestamp.json")) != string(ts) {
		t.Fatal("identical approvals re-signed the repository")
	}
	if rep, err := Verify(ctx, tr.dir, nil, tr.clock.Now()); err != nil || !rep.OK() || rep.Bins != 0 || rep.Targets != 1 {
		t.Fatalf("verify site: %v %+v", err, rep)
	}
	s := newServer(t, tr.dir)
	c := newClient(t, tr, s, "", fetch.Limits{})
	got, _, err := c.Approvals(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	if a := got.Find("debian", "BW-1"); a == nil || a.Rollout != 50 {
		t.Fatalf("approvals = %+v", got)
	}
	if _, _, err := c.Approvals(ctx, "nobody"); !errors.Is(err, ErrUnknownUpdate) {
		t.Fatalf("unknown group: %v", err)
	}

	// A compromised mirror in front of the site raises the rollout.
	tf, _ := c.Target(ctx, approval.Path("web"))
	genuine := tr.read("targets/" + strings.TrimPrefix(c.TargetURL(tf), s.URL+"/targets/"))
	evil := strings.Replace(string(genuine), `"rollout": 50`, `"rollout": 99`, 1)
	s.serveBytes(strings.TrimPrefix(c.TargetURL(tf), s.URL), []byte(evil))
	if _, _, err := c.Approvals(ctx, "web"); err == nil || !strings.Contains(err.Error(), "signed hash") {
		t.Fatalf("tampered approvals: err = %v, want hash mismatch", err)
	}
	s.reset()

	if err := site.RemoveGroup(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	c = newClient(t, tr, s, "", fetch.Limits{})
	if _, _, err := c.Approvals(ctx, "web"); !errors.Is(err, ErrUnknownUpdate) {
		t.Fatalf("removed group: %v", err)
	}
	if _, err := site.r.Publish(ctx, writeUpdate(t, "BW-9", map[string]string{"a.deb": "x"}, ""), PublishOptions{}); err == nil {
		t.Fatal("publishing into a site repository was accepted")
	}
	root, err := site.Root()
	if err != nil || !strings.Contains(string(root), `"_type":"root"`) {
		t.Fatalf("root: %v %.80s", err, root)
	}
	if keys, err := site.RootKeyFiles(); err != nil || len(keys) != 1 {
		t.Fatalf("root key files: %v %v", keys, err)
	}
}

func TestOpenSiteRefusesVendorRepository(t *testing.T) {
	tr := newTestRepo(t, InitOptions{})
	tr.repo.Close()
	if _, err := OpenSite(tr.dir, Options{}); err == nil || !strings.Contains(err.Error(), "not a site repository") {
		t.Fatalf("err = %v", err)
	}
}
