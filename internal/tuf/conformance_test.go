package tuf

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/bulwarkhq/bulwark/internal/fetch"
)

// Cases of the TUF client conformance suite (theupdateframework/
// tuf-conformance) that Bulwark's client once failed, played against
// simRepo: repositories Bulwark's own publisher never writes.

// TestConformanceTargetHashes: every listed hash of a supported algorithm
// is checked and at least one is required, in Client.Download and in
// Client.Update (bytes in memory).
func TestConformanceTargetHashes(t *testing.T) {
	tests := []struct {
		name   string
		hashes []string
		ok     bool
	}{
		{"sha256 only", []string{"sha256"}, true},
		{"sha512 only", []string{"sha512"}, true},
		{"sha256 and sha512", []string{"sha256", "sha512"}, true},
		{"unknown algorithm beside sha512 is ignored", []string{"md5", "sha512"}, true},
		{"right sha256 beside a wrong sha512", []string{"sha256", "bad-sha512"}, false},
		{"wrong sha512 only", []string{"bad-sha512"}, false},
		{"no supported hash", []string{"md5"}, false},
	}
	for _, consistent := range []bool{true, false} {
		for _, tt := range tests {
			t.Run(tt.name+map[bool]string{true: "/consistent", false: "/plain"}[consistent], func(t *testing.T) {
				s := newSimRepo(t, consistent)
				content := []byte("the target's bytes\n")
				s.addTarget(metadata.TARGETS, "files/a.txt", content, tt.hashes...)
				s.publish()
				c := s.client(t)
				if err := c.Refresh(t.Context()); err != nil {
					t.Fatal(err)
				}
				tf, err := c.Target(t.Context(), "files/a.txt")
				if err != nil {
					t.Fatal(err)
				}
				dst := filepath.Join(t.TempDir(), "a.txt")
				err = c.Download(t.Context(), tf, dst, fetch.FileOptions{})
				if tt.ok {
					if err != nil {
						t.Fatalf("download: %v", err)
					}
					if got, _ := os.ReadFile(dst); string(got) != string(content) {
						t.Fatalf("downloaded %q", got)
					}
				} else {
					if err == nil {
						t.Fatal("download accepted")
					}
					t.Logf("refused: %v", err)
					assertNothingAt(t, dst)
				}
				// The same rule for bytes checked in memory.
				if err := checkTarget(tf, content); (err == nil) != tt.ok {
					t.Errorf("checkTarget: %v, want ok=%v", err, tt.ok)
				}
			})
		}
	}
}

func assertNothingAt(t testing.TB, dst string) {
	t.Helper()
	for _, p := range []string{dst, dst + fetch.PartialSuffix, dst + fetch.MetaSuffix} {
		if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left behind", filepath.Base(p))
		}
	}
}

// TestConformanceConsistentSnapshotFalse: a root without consistent
// snapshots is read by plain names, metadata and targets alike.
func TestConformanceConsistentSnapshotFalse(t *testing.T) {
	for _, consistent := range []bool{true, false} {
		t.Run(map[bool]string{true: "consistent", false: "plain"}[consistent], func(t *testing.T) {
			s := newSimRepo(t, consistent)
			content := []byte("payload\n")
			tf := s.addTarget(metadata.TARGETS, "dir/p.bin", content, "sha256")
			s.publish()
			c := s.client(t)
			got, err := c.Target(t.Context(), "dir/p.bin")
			if err != nil {
				t.Fatal(err)
			}
			dst := filepath.Join(t.TempDir(), "p.bin")
			if err := c.Download(t.Context(), got, dst, fetch.FileOptions{}); err != nil {
				t.Fatal(err)
			}
			reqs := s.requested()
			want := []string{"/metadata/snapshot.json", "/metadata/targets.json", "/targets/dir/p.bin"}
			if consistent {
				want = []string{"/metadata/1.snapshot.json", "/metadata/1.targets.json", "/targets/dir/" + targetName(tf, true)}
			}
			for _, w := range want {
				if !slices.Contains(reqs, w) {
					t.Errorf("no request for %s; requests: %v", w, reqs)
				}
			}
		})
	}
}

// TestAttackUnsupportedDelegation: Bulwark's client accepts only targets →
// succinct hashed bins (or no delegation). A repository delegating to named
// roles, or bins delegating further, is refused, so go-tuf's reuse of a
// cached delegated role reached through a second delegator cannot arise.
func TestAttackUnsupportedDelegation(t *testing.T) {
	content := []byte("evil\n")
	tests := []struct {
		name  string
		build func(s *simRepo)
	}{
		{"named role from targets", func(s *simRepo) {
			s.delegate(metadata.TARGETS, "role-a", "*")
			s.addTarget("role-a", "x/evil.bin", content, "sha256")
		}},
		{"one role reached through two delegators", func(s *simRepo) {
			s.delegate(metadata.TARGETS, "role-a", "*")
			s.delegate(metadata.TARGETS, "role-b", "*")
			s.delegate("role-a", "role-c", "*")
			s.addTarget("role-c", "x/evil.bin", content, "sha256")
		}},
		{"a hashed bin delegating further", func(s *simRepo) {
			s.bins(2)
			bin := s.binFor("x/evil.bin")
			s.delegate(bin, "deeper", "*")
			s.addTarget("deeper", "x/evil.bin", content, "sha256")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSimRepo(t, true)
			tt.build(s)
			s.publish()
			c := s.client(t)
			err := c.Refresh(t.Context())
			if err == nil {
				_, err = c.Target(t.Context(), "x/evil.bin")
			}
			if !errors.Is(err, ErrDelegation) {
				t.Fatalf("err = %v, want ErrDelegation", err)
			}
			t.Logf("refused: %v", err)
		})
	}
	// Bulwark's own shape still works through the same simulator.
	t.Run("hashed bins are accepted", func(t *testing.T) {
		s := newSimRepo(t, true)
		s.bins(2)
		s.addTarget(s.binFor("x/good.bin"), "x/good.bin", content, "sha256")
		s.publish()
		c := s.client(t)
		if _, err := c.Target(t.Context(), "x/good.bin"); err != nil {
			t.Fatal(err)
		}
	})
}

// TestConformanceMirror: the mirror follows the same rules as the client:
// plain names without consistent snapshots, every listed hash checked,
// nothing but hashed bins.
func TestConformanceMirror(t *testing.T) {
	// A real update.json and payload from Bulwark's publisher, listed by
	// the simulator.
	tr := newTestRepo(t, InitOptions{})
	tr.publish("BW-1", map[string]string{"a.deb": "payload bytes\n"})
	uj := tr.read("targets/updates/BW-1/" + targetNameOf(t, tr, UpdatePath("BW-1")))
	pl := tr.read("targets/updates/BW-1/" + targetNameOf(t, tr, PayloadPath("BW-1", "a.deb")))

	tests := []struct {
		name          string
		consistent    bool
		payloadHashes []string
		wantErr       bool
	}{
		{"plain names", false, []string{"sha256"}, false},
		{"consistent names, sha256 and sha512", true, []string{"sha256", "sha512"}, false},
		{"right sha256 beside a wrong sha512 on the payload", true, []string{"sha256", "bad-sha512"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSimRepo(t, tt.consistent)
			s.bins(2)
			s.addTarget(s.binFor(UpdatePath("BW-1")), UpdatePath("BW-1"), uj, "sha256")
			ptf := s.addTarget(s.binFor(PayloadPath("BW-1", "a.deb")), PayloadPath("BW-1", "a.deb"), pl, tt.payloadHashes...)
			s.publish()
			dir := filepath.Join(t.TempDir(), "mirror")
			_, err := Mirror(t.Context(), MirrorConfig{
				TrustedRoot: s.rootBytes(), MetadataURL: s.srv.URL + "/metadata", TargetsURL: s.srv.URL + "/targets",
				Dir: dir, Now: func() time.Time { return s.now },
			})
			reqs := s.requested()
			pdst := filepath.Join(dir, TargetsDir, "updates", "BW-1", targetName(ptf, tt.consistent))
			if tt.wantErr {
				if err == nil {
					t.Fatal("mirror accepted the payload")
				}
				t.Logf("refused: %v", err)
				assertNothingAt(t, pdst)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := mustRead(t, pdst); string(got) != string(pl) {
				t.Errorf("mirrored payload differs")
			}
			for _, r := range reqs {
				if tt.consistent != strings.Contains(r, ".snapshot.json") && strings.Contains(r, "snapshot.json") {
					t.Errorf("request %s under consistent_snapshot %v", r, tt.consistent)
				}
			}
			if !tt.consistent && !slices.Contains(reqs, "/targets/updates/BW-1/a.deb") {
				t.Errorf("no plain-name payload request; requests: %v", reqs)
			}
			// A client reading the mirror finds everything by the same names.
			ms := newServer(t, dir)
			c, err := NewClient(ClientConfig{TrustedRoot: s.rootBytes(), MetadataURL: ms.URL + "/metadata",
				TargetsURL: ms.URL + "/targets", CacheDir: t.TempDir(), Now: func() time.Time { return s.now }})
			if err != nil {
				t.Fatal(err)
			}
			info, err := c.Update(t.Context(), "BW-1")
			if err != nil {
				t.Fatalf("update from the mirror: %v", err)
			}
			ptf, err = c.Payload(t.Context(), info, "a.deb")
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Download(t.Context(), ptf, filepath.Join(t.TempDir(), "a.deb"), fetch.FileOptions{}); err != nil {
				t.Fatalf("payload from the mirror: %v", err)
			}
		})
	}
}

// targetNameOf is the file name of a target in a Bulwark test repository.
func targetNameOf(t testing.TB, tr *testRepo, p string) string {
	t.Helper()
	c := newClient(t, tr, newServer(t, tr.dir), "", fetch.Limits{})
	tf, err := c.Target(t.Context(), p)
	if err != nil {
		t.Fatal(err)
	}
	return targetName(tf, true)
}
