package server

import (
	"context"
	"errors"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bulwarkhq/bulwark/internal/content/s3test"
	"github.com/bulwarkhq/bulwark/internal/fetch"
	"github.com/bulwarkhq/bulwark/internal/tuf"
)

// resumeAcrossReplicas: with an S3 content store, every target of the
// vendor repository is in the bucket after a sync; a payload whose local
// copy is gone is served from S3 by both replicas, and a download started
// through one replica resumes through the other (Range with If-Range on
// the ETag both give). A target published after the last sync is served
// from the local copy until the next sync copies it.
func resumeAcrossReplicas(t *testing.T, a, b *testServer, v *vendorRepo, ag *testAgent) {
	t.Helper()
	ctx := context.Background()
	var local int
	filepath.WalkDir(filepath.Join(v.dir, tuf.TargetsDir), func(p string, e fs.DirEntry, err error) error {
		if err == nil && e.Type().IsRegular() && !strings.HasPrefix(e.Name(), ".") {
			local++
		}
		return nil
	})
	objs, err := a.cfg.Content.List(ctx, "example/targets/")
	if err != nil {
		t.Fatal(err)
	}
	if local == 0 || len(objs) != local {
		t.Fatalf("content store holds %d targets, the repository %d", len(objs), local)
	}
	ms, _ := filepath.Glob(filepath.Join(v.dir, tuf.TargetsDir, "updates", "BW-1", "*.a.deb"))
	if len(ms) != 1 {
		t.Fatalf("payload of BW-1: %v", ms)
	}
	if err := os.Remove(ms[0]); err != nil { // from now on only S3 has it
		t.Fatal(err)
	}
	url := "/repos/example/targets/updates/BW-1/" + filepath.Base(ms[0])
	code, body, hdr := a.agentDo(ag, ag.client, "GET", url, nil, nil)
	if code != http.StatusOK || string(body) != "payload 1" || hdr.Get("ETag") == "" {
		t.Fatalf("payload from S3 through replica A: %d %q etag %q", code, body, hdr.Get("ETag"))
	}
	code, body, _ = b.agentDo(ag, ag.client, "GET", url, nil, map[string]string{"Range": "bytes=3-", "If-Range": hdr.Get("ETag")})
	if code != http.StatusPartialContent || string(body) != "load 1" {
		t.Fatalf("resumed through replica B: %d %q, want 206 \"load 1\"", code, body)
	}

	v.publish(t, "BW-5", "critical", map[string]string{"a.deb": "payload 5"})
	ms, _ = filepath.Glob(filepath.Join(v.dir, tuf.TargetsDir, "updates", "BW-5", "*.a.deb"))
	if len(ms) != 1 {
		t.Fatalf("payload of BW-5: %v", ms)
	}
	url5 := "/repos/example/targets/updates/BW-5/" + filepath.Base(ms[0])
	if code, body, _ := b.agentDo(ag, ag.client, "GET", url5, nil, nil); code != http.StatusOK || string(body) != "payload 5" {
		t.Fatalf("a target not copied yet, through replica B: %d %q", code, body)
	}
	if _, err := b.SyncAll(ctx, "", "manual"); err != nil {
		t.Fatal(err)
	}
	if o, err := a.cfg.Content.Open(ctx, "example/targets/updates/BW-5/"+filepath.Base(ms[0])); err != nil {
		t.Fatalf("after a sync on replica B the new payload is not in S3: %v", err)
	} else {
		o.Close()
	}
}

// TestAttackSwappedObjectInContentStore: whoever can write to the bucket
// (its operator, a leaked key) replaces a payload's bytes. The server
// serves what the bucket holds; the agent's verifying download refuses it
// against the vendor-signed hash and leaves no file. The same download of
// the original bytes succeeds, the control.
func TestAttackSwappedObjectInContentStore(t *testing.T) {
	ctx := context.Background()
	st := s3test.Start(t).Open(t, "bulwark", "")
	v := newVendorRepo(t, "example")
	v.publish(t, "BW-1", "critical", map[string]string{"a.deb": "payload 1"})
	ts := startServer(t, Config{Vendors: []HostedVendor{{Name: "example", Dir: v.dir}}, Content: st})
	// startServer waited for the sync every start runs, which copies the
	// payload; a later sync would put the original bytes back over the
	// swapped ones (an object of another size is copied again).
	ms, _ := filepath.Glob(filepath.Join(v.dir, tuf.TargetsDir, "updates", "BW-1", "*.a.deb"))
	if len(ms) != 1 {
		t.Fatalf("payload: %v", ms)
	}
	key := "example/targets/updates/BW-1/" + filepath.Base(ms[0])
	download := func() error {
		c, err := tuf.NewClient(tuf.ClientConfig{TrustedRoot: v.root(t), MetadataURL: ts.url + "/repos/example/metadata",
			TargetsURL: ts.url + "/repos/example/targets", CacheDir: t.TempDir(), Fetcher: fetch.New(fetch.Options{HTTPClient: ts.client})})
		if err != nil {
			t.Fatal(err)
		}
		info, err := c.Update(ctx, "BW-1")
		if err != nil {
			t.Fatal(err)
		}
		tf, err := c.Payload(ctx, info, "a.deb")
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(t.TempDir(), "a.deb")
		err = c.Download(ctx, tf, dst, fetch.FileOptions{})
		if _, serr := os.Stat(dst); err != nil && serr == nil {
			t.Fatalf("a refused download left %s", dst)
		}
		return err
	}
	evil := "evil!! 1"
	if err := st.Put(ctx, key, strings.NewReader(evil), int64(len(evil))); err != nil {
		t.Fatal(err)
	}
	if code, body, _ := ts.do(ts.client, "GET", "/repos/example/targets/updates/BW-1/"+filepath.Base(ms[0]), "", nil); code != 200 || string(body) != evil {
		t.Fatalf("the server did not serve the bucket's bytes (%d %q): the attack is not set up", code, body)
	}
	if err := download(); err == nil {
		t.Fatal("the agent's download accepted a payload swapped in the content store")
	}
	good := "payload 1"
	if err := st.Put(ctx, key, strings.NewReader(good), int64(len(good))); err != nil {
		t.Fatal(err)
	}
	if err := download(); err != nil {
		t.Fatalf("control: the original payload: %v", err)
	}
}

// TestAttackDamagedLocalTargetNotCopied: a local target whose bytes do not
// have the hash its name carries (a damaged disk, a hand edit) is not
// copied to the content store, and the sync says so.
func TestAttackDamagedLocalTargetNotCopied(t *testing.T) {
	ctx := context.Background()
	st := s3test.Start(t).Open(t, "bulwark", "")
	v := newVendorRepo(t, "example")
	v.publish(t, "BW-1", "critical", map[string]string{"a.deb": "payload 1"})
	v.publish(t, "BW-2", "critical", map[string]string{"a.deb": "payload 2"})
	ms, _ := filepath.Glob(filepath.Join(v.dir, tuf.TargetsDir, "updates", "BW-1", "*.a.deb"))
	good, _ := filepath.Glob(filepath.Join(v.dir, tuf.TargetsDir, "updates", "BW-2", "*.a.deb"))
	if len(ms) != 1 || len(good) != 1 {
		t.Fatalf("payloads: %v %v", ms, good)
	}
	if err := os.WriteFile(ms[0], []byte("payload X"), 0o644); err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, Config{Vendors: []HostedVendor{{Name: "example", Dir: v.dir}}, Content: st})
	_, err := ts.SyncAll(ctx, "", "manual")
	if err == nil || !strings.Contains(err.Error(), "not copied") {
		t.Fatalf("sync with a damaged payload: %v, want it named as not copied", err)
	}
	if _, err := st.Open(ctx, "example/targets/updates/BW-1/"+filepath.Base(ms[0])); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the damaged payload is in the content store: %v", err)
	}
	o, err := st.Open(ctx, "example/targets/updates/BW-2/"+filepath.Base(good[0]))
	if err != nil {
		t.Fatalf("a sound payload beside the damaged one was not copied: %v", err)
	}
	o.Close()
}
