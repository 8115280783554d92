package tuf

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bulwarkhq/bulwark/internal/fetch"
)

func TestPublishVerifyAndLookUp(t *testing.T) {
	tr := newTestRepo(t, InitOptions{})
	res := tr.publish("BW-2026-0001", map[string]string{"a.deb": "payload-a", "b.deb": "payload-b"})
	if !res.Changed || res.Revision != 1 || len(res.Targets) != 3 {
		t.Fatalf("publish result = %+v, want changed revision 1 with 3 targets", res)
	}
	rep, err := Verify(context.Background(), tr.dir, nil, tr.clock.Now())
	if err != nil || !rep.OK() {
		t.Fatalf("verify: %v %+v", err, rep)
	}
	if rep.Updates != 1 || rep.Targets != 3 || rep.Bins != 16 {
		t.Fatalf("verify counted %d updates, %d targets, %d bins; want 1, 3, 16", rep.Updates, rep.Targets, rep.Bins)
	}

	s := newServer(t, tr.dir)
	c := newClient(t, tr, s, "", fetch.Limits{})
	ctx := context.Background()
	if err := c.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	info, err := c.Update(ctx, "BW-2026-0001")
	if err != nil {
		t.Fatal(err)
	}
	if info.Update.Title != "Test update BW-2026-0001" || info.Update.Revision != 1 {
		t.Fatalf("update = %+v", info.Update)
	}
	tf, err := c.Payload(ctx, info, "b.deb")
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "b.deb")
	if err := c.Download(ctx, tf, dst, fetch.FileOptions{}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(dst); string(b) != "payload-b" {
		t.Fatalf("downloaded %q, want payload-b", b)
	}
	if _, err := c.Update(ctx, "BW-2026-0404"); !errors.Is(err, ErrUnknownUpdate) {
		t.Fatalf("unknown update: err = %v, want ErrUnknownUpdate", err)
	}
}

func TestPublishIdenticalIsNoOpAndChangesNeedRevise(t *testing.T) {
	tr := newTestRepo(t, InitOptions{})
	ctx := context.Background()
	y := writeUpdate(t, "BW-1", map[string]string{"a.deb": "one"}, "")
	if _, err := tr.repo.Publish(ctx, y, PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	ts := tr.read("metadata/timestamp.json")
	res, err := tr.repo.Publish(ctx, y, PublishOptions{})
	if err != nil || res.Changed {
		t.Fatalf("second identical publish: %+v, %v; want unchanged", res, err)
	}
	if string(tr.read("metadata/timestamp.json")) != string(ts) {
		t.Fatal("identical publish re-signed the timestamp")
	}
	changed := writeUpdate(t, "BW-1", map[string]string{"a.deb": "two"}, "")
	if _, err := tr.repo.Publish(ctx, changed, PublishOptions{}); !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), "--revise") {
		t.Fatalf("changed content without --revise: err = %v, want ErrExists naming --revise", err)
	}
	res, err = tr.repo.Publish(ctx, changed, PublishOptions{Revise: true})
	if err != nil || res.Revision != 2 {
		t.Fatalf("revise: %+v, %v; want revision 2", res, err)
	}
	e, err := tr.repo.Show(ctx, "BW-1")
	if err != nil || e.Update.Revision != 2 || e.Payloads[0].Length != 3 {
		t.Fatalf("show after revise: %+v, %v", e, err)
	}
	if rep, err := Verify(ctx, tr.dir, nil, tr.clock.Now()); err != nil || !rep.OK() {
		t.Fatalf("verify: %v %+v", err, rep)
	}
}

func TestPublishRejectsUnknownReferencesWithLine(t *testing.T) {
	tr := newTestRepo(t, InitOptions{})
	y := writeUpdate(t, "BW-2", map[string]string{"a.deb": "x"}, "supersedes: [BW-0099]\n")
	_, err := tr.repo.Publish(context.Background(), y, PublishOptions{})
	if err == nil || !strings.Contains(err.Error(), "BW-0099") || !strings.Contains(err.Error(), "supersedes") || !strings.Contains(err.Error(), ".yaml:12:") {
		t.Fatalf("err = %v; want it to name supersedes, line 12 and BW-0099", err)
	}
	missing := writeUpdate(t, "BW-3", map[string]string{"a.deb": "x"}, "")
	os.Remove(filepath.Join(filepath.Dir(missing), "a.deb"))
	_, err = tr.repo.Publish(context.Background(), missing, PublishOptions{})
	if err == nil || !strings.Contains(err.Error(), "payloads[0].file") {
		t.Fatalf("missing payload: err = %v; want it to name payloads[0].file", err)
	}
}

func TestExpireWithdrawsPayloads(t *testing.T) {
	tr := newTestRepo(t, InitOptions{})
	tr.publish("BW-9", map[string]string{"a.deb": "x"})
	ctx := context.Background()
	res, err := tr.repo.Expire(ctx, "BW-9")
	if err != nil || !res.Changed || res.Revision != 2 {
		t.Fatalf("expire: %+v %v", res, err)
	}
	e, err := tr.repo.Show(ctx, "BW-9")
	if err != nil || !e.Update.Withdrawn || e.Payloads[0] != nil {
		t.Fatalf("after expire: withdrawn=%v payload target=%v err=%v", e.Update.Withdrawn, e.Payloads, err)
	}
	s := newServer(t, tr.dir)
	c := newClient(t, tr, s, "", fetch.Limits{})
	info, err := c.Update(ctx, "BW-9")
	if err != nil || !info.Update.Withdrawn {
		t.Fatalf("client sees %+v, %v; want withdrawn", info, err)
	}
	if _, err := c.Payload(ctx, info, "a.deb"); !errors.Is(err, ErrUnknownUpdate) {
		t.Fatalf("payload of withdrawn update: err = %v, want not a target", err)
	}
	if _, err := tr.repo.Expire(ctx, "BW-404"); !errors.Is(err, ErrUnknownUpdate) {
		t.Fatalf("expire unknown: %v", err)
	}
}

func TestPublishManyIsAllOrNothing(t *testing.T) {
	tr := newTestRepo(t, InitOptions{})
	ctx := context.Background()
	base := writeUpdate(t, "BW-10", map[string]string{"a.deb": "a"}, "")
	rollup := writeUpdate(t, "BW-11", map[string]string{"b.deb": "b"}, "supersedes: [BW-10]\n")
	bad := writeUpdate(t, "BW-12", map[string]string{"c.deb": "c"}, "requires: [BW-404]\n")
	ts := tr.read("metadata/timestamp.json")
	if _, err := tr.repo.PublishMany(ctx, []string{base, rollup, bad}, PublishOptions{}); err == nil || !strings.Contains(err.Error(), "BW-404") {
		t.Fatalf("batch with a bad update: err = %v", err)
	}
	if string(tr.read("metadata/timestamp.json")) != string(ts) {
		t.Fatal("a failed batch changed the signed state")
	}
	res, err := tr.repo.PublishMany(ctx, []string{base, rollup}, PublishOptions{})
	if err != nil || len(res) != 2 || !res[1].Changed {
		t.Fatalf("batch: %+v, %v", res, err)
	}
	if v := tr.timestamp().Signed.Version; v != 2 {
		t.Fatalf("timestamp version %d after one batch, want 2 (one commit)", v)
	}
	if rep, err := Verify(ctx, tr.dir, nil, tr.clock.Now()); err != nil || !rep.OK() || rep.Updates != 2 {
		t.Fatalf("verify: %v %+v", err, rep)
	}
}
