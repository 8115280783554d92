package tuf

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Tampering with any byte of metadata or payload makes Verify fail with a
// problem that says what and where.
func TestVerifyFindsTampering(t *testing.T) {
	for _, tc := range []struct {
		name     string
		file     func(tr *testRepo) string // relative path to tamper with
		wantPath string
		wantMsg  string
	}{
		{"timestamp", func(tr *testRepo) string { return "metadata/timestamp.json" }, "metadata/timestamp.json", ""},
		{"snapshot", func(tr *testRepo) string { _, n := tr.snapshot(); return "metadata/" + n }, "metadata/", "snapshot"},
		{"bin", func(tr *testRepo) string {
			snap, _ := tr.snapshot()
			b := tr.binOf("BW-1")
			return fmt.Sprintf("metadata/%d.%s.json", snap.Signed.Meta[b+".json"].Version, b)
		}, "metadata/", "bins-"},
		{"payload", func(tr *testRepo) string { return payloadFile(t, tr, "a.deb") }, "targets/updates/BW-1/", "sha256"},
		{"update.json", func(tr *testRepo) string { return payloadFile(t, tr, "update.json") }, "targets/updates/BW-1/", "sha256"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := newTestRepo(t, InitOptions{})
			tr.publish("BW-1", map[string]string{"a.deb": "the genuine payload"})
			rel := tc.file(tr)
			p := filepath.Join(tr.dir, rel)
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			// Flip one byte in the middle, keeping JSON readable where we can
			// by changing a digit or letter to another.
			i := len(b) / 2
			for ; i < len(b); i++ {
				if (b[i] >= 'a' && b[i] <= 'f') || (b[i] >= '0' && b[i] <= '8') {
					b[i]++
					break
				}
			}
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
			rep, err := Verify(context.Background(), tr.dir, nil, tr.clock.Now())
			if err != nil {
				t.Fatal(err)
			}
			if rep.OK() {
				t.Fatalf("tampered %s: verify found nothing", rel)
			}
			got := rep.Problems[0].String()
			if !strings.HasPrefix(rep.Problems[0].Path, tc.wantPath) || !strings.Contains(strings.ToLower(got), tc.wantMsg) {
				t.Fatalf("tampered %s: problem %q; want path %s… and %q", rel, got, tc.wantPath, tc.wantMsg)
			}
		})
	}
}

func TestVerifyReportsExpiryWithHint(t *testing.T) {
	tr := newTestRepo(t, InitOptions{})
	tr.publish("BW-1", map[string]string{"a.deb": "x"})
	rep, err := Verify(context.Background(), tr.dir, nil, tr.clock.Now().Add(25*time.Hour))
	if err != nil || rep.OK() || !strings.Contains(rep.Problems[0].Msg, "repo refresh") {
		t.Fatalf("expired timestamp: %v %+v; want a problem pointing at repo refresh", err, rep)
	}
	tr.clock.Add(25 * time.Hour)
	if _, err := tr.repo.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if rep, err := Verify(context.Background(), tr.dir, nil, tr.clock.Now()); err != nil || !rep.OK() {
		t.Fatalf("after refresh: %v %+v", err, rep)
	}
}

func payloadFile(t testing.TB, tr *testRepo, name string) string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(tr.dir, "targets/updates/BW-1"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), "."+name) {
			return "targets/updates/BW-1/" + e.Name()
		}
	}
	t.Fatalf("no target file for %s", name)
	return ""
}
