package tuf

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/bulwarkhq/bulwark/internal/fetch"
)

// The attacks of the TUF specification (section 1.5.2), each played by a
// real HTTP server on loopback that misbehaves, and each shown failing.

// keys returns the repository's key files for role, as an attacker who stole
// them would have them.
func (tr *testRepo) keys(role string) []*signingKey {
	tr.t.Helper()
	ks, err := loadRoleKeys(filepath.Join(tr.dir, KeysDir), role)
	if err != nil || len(ks) == 0 {
		tr.t.Fatalf("keys of %s: %v", role, err)
	}
	return ks
}

// resign signs m with keys and returns its bytes: metadata as an attacker
// holding those keys would make it.
func resign[T metadata.Roles](t testing.TB, m *metadata.Metadata[T], keys ...*signingKey) []byte {
	t.Helper()
	m.ClearSignatures()
	for _, k := range keys {
		s, err := k.signer()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.Sign(s); err != nil {
			t.Fatal(err)
		}
	}
	b, err := m.ToBytes(false)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (tr *testRepo) timestamp() *metadata.Metadata[metadata.TimestampType] {
	tr.t.Helper()
	m, err := metadata.Timestamp().FromBytes(tr.read("metadata/timestamp.json"))
	if err != nil {
		tr.t.Fatal(err)
	}
	return m
}

func (tr *testRepo) snapshot() (*metadata.Metadata[metadata.SnapshotType], string) {
	tr.t.Helper()
	v := tr.timestamp().Signed.Meta["snapshot.json"].Version
	name := fmt.Sprintf("%d.snapshot.json", v)
	m, err := metadata.Snapshot().FromBytes(tr.read("metadata/" + name))
	if err != nil {
		tr.t.Fatal(err)
	}
	return m, name
}

// binOf names the bin that holds an update's update.json.
func (tr *testRepo) binOf(id string) string {
	tr.t.Helper()
	st, err := tr.repo.load()
	if err != nil {
		tr.t.Fatal(err)
	}
	return st.binFor(UpdatePath(id))
}

func mustRefreshAndLookUp(t *testing.T, c *Client, id string) {
	t.Helper()
	if err := c.Refresh(context.Background()); err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if _, err := c.Update(context.Background(), id); err != nil {
		t.Fatalf("look up %s: %v", id, err)
	}
}

func TestAttackRollback(t *testing.T) {
	for _, role := range []string{"timestamp", "snapshot", "targets", "bin"} {
		t.Run(role, func(t *testing.T) {
			tr := newTestRepo(t, InitOptions{})
			tr.publish("BW-1", map[string]string{"a.deb": "v1"})
			oldTS := tr.read("metadata/timestamp.json")
			oldSnap, _ := tr.snapshot()
			s := newServer(t, tr.dir)
			cache := t.TempDir()
			mustRefreshAndLookUp(t, newClient(t, tr, s, cache, fetch.Limits{}), "BW-1")

			// The vendor moves on; the client sees the new state.
			tr.clock.Add(time.Hour)
			tr.publish("BW-1", map[string]string{"a.deb": "v2"})
			if _, err := tr.repo.Rotate(context.Background(), binsRole, RotateOptions{}); err != nil {
				t.Fatal(err) // re-signs targets and every bin: all roles move forward
			}
			mustRefreshAndLookUp(t, newClient(t, tr, s, cache, fetch.Limits{}), "BW-1")

			// The attacker, holding the online timestamp and snapshot keys,
			// serves a consistent older state.
			switch role {
			case "timestamp":
				s.serveBytes("/metadata/timestamp.json", oldTS)
			default:
				snap := oldSnap
				if role == "snapshot" {
					snap.Signed.Version = 1
				} else {
					cur, _ := tr.snapshot()
					snap = cur
					snap.Signed.Version++
					if role == "targets" {
						snap.Signed.Meta["targets.json"].Version = 1
					} else {
						snap.Signed.Meta[tr.binOf("BW-1")+".json"].Version = 1
					}
				}
				snapBytes := resign(t, snap, tr.keys("snapshot")...)
				s.serveBytes(fmt.Sprintf("/metadata/%d.snapshot.json", snap.Signed.Version), snapBytes)
				ts := tr.timestamp()
				ts.Signed.Version++
				ts.Signed.Meta["snapshot.json"] = metadata.MetaFile(snap.Signed.Version)
				s.serveBytes("/metadata/timestamp.json", resign(t, ts, tr.keys("timestamp")...))
			}
			err := newClient(t, tr, s, cache, fetch.Limits{}).Refresh(context.Background())
			var bad *metadata.ErrBadVersionNumber
			if !errors.As(err, &bad) {
				t.Fatalf("rollback of %s: err = %v, want ErrBadVersionNumber", role, err)
			}
		})
	}
}

func TestAttackIndefiniteFreeze(t *testing.T) {
	tr := newTestRepo(t, InitOptions{})
	tr.publish("BW-1", map[string]string{"a.deb": "v1"})
	frozen := map[string][]byte{}
	for _, f := range []string{"timestamp.json"} {
		frozen[f] = tr.read("metadata/" + f)
	}
	s := newServer(t, tr.dir)
	// Two days later the vendor has refreshed, but the attacker keeps
	// replaying the old, validly signed timestamp.
	tr.clock.Add(48 * time.Hour)
	if _, err := tr.repo.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	s.serveBytes("/metadata/timestamp.json", frozen["timestamp.json"])
	err := newClient(t, tr, s, "", fetch.Limits{}).Refresh(context.Background())
	var exp *metadata.ErrExpiredMetadata
	if !errors.As(err, &exp) {
		t.Fatalf("replayed expired timestamp: err = %v, want ErrExpiredMetadata", err)
	}
	s.reset()
	mustRefreshAndLookUp(t, newClient(t, tr, s, "", fetch.Limits{}), "BW-1")
}

func TestAttackFastForwardRecovery(t *testing.T) {
	for _, role := range []string{metadata.TIMESTAMP, metadata.SNAPSHOT} {
		t.Run(role, func(t *testing.T) {
			tr := newTestRepo(t, InitOptions{})
			tr.publish("BW-1", map[string]string{"a.deb": "v1"})
			s := newServer(t, tr.dir)
			cache := t.TempDir()
			// An attacker who stole the key fast-forwards the client to
			// version 1000 of the role.
			snap, _ := tr.snapshot()
			ts := tr.timestamp()
			if role == metadata.SNAPSHOT {
				snap.Signed.Version = 1000
				s.serveBytes("/metadata/1000.snapshot.json", resign(t, snap, tr.keys("snapshot")...))
				ts.Signed.Meta["snapshot.json"] = metadata.MetaFile(1000)
			}
			ts.Signed.Version = 1000
			s.serveBytes("/metadata/timestamp.json", resign(t, ts, tr.keys("timestamp")...))
			mustRefreshAndLookUp(t, newClient(t, tr, s, cache, fetch.Limits{}), "BW-1")
			s.reset()
			// Without a key rotation the client is stuck: every honest
			// version is now a rollback.
			if err := newClient(t, tr, s, cache, fetch.Limits{}).Refresh(context.Background()); err == nil {
				t.Fatal("client accepted a lower version after being fast-forwarded; the attack is not modelled")
			}
			// The vendor rotates the stolen keys (the snapshot attacker also
			// needed the timestamp key); the client recovers.
			rotate := []string{role}
			if role == metadata.SNAPSHOT {
				rotate = append(rotate, metadata.TIMESTAMP)
			}
			for _, r := range rotate {
				if _, err := tr.repo.Rotate(context.Background(), r, RotateOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			tr.publish("BW-2", map[string]string{"b.deb": "v1"})
			mustRefreshAndLookUp(t, newClient(t, tr, s, cache, fetch.Limits{}), "BW-2")
		})
	}
}

func TestAttackMixAndMatch(t *testing.T) {
	tr := newTestRepo(t, InitOptions{})
	tr.publish("BW-1", map[string]string{"a.deb": "v1"})
	bin := tr.binOf("BW-1")
	snap1, _ := tr.snapshot()
	v1 := snap1.Signed.Meta[bin+".json"].Version
	oldBin := tr.read(fmt.Sprintf("metadata/%d.%s.json", v1, bin))
	tr.publish("BW-1", map[string]string{"a.deb": "v2"})
	snap2, _ := tr.snapshot()
	v2 := snap2.Signed.Meta[bin+".json"].Version
	// A mirror serves the current snapshot with the bin of an older one.
	s := newServer(t, tr.dir)
	s.serveBytes(fmt.Sprintf("/metadata/%d.%s.json", v2, bin), oldBin)
	c := newClient(t, tr, s, "", fetch.Limits{})
	if err := c.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, err := c.Update(context.Background(), "BW-1")
	var bad *metadata.ErrBadVersionNumber
	if !errors.As(err, &bad) {
		t.Fatalf("mix-and-match: err = %v, want ErrBadVersionNumber", err)
	}
}

func TestAttackArbitraryAndWrongPayload(t *testing.T) {
	tr := newTestRepo(t, InitOptions{})
	tr.publish("BW-1", map[string]string{"a.deb": "genuine payload of BW-1"})
	tr.publish("BW-2", map[string]string{"b.deb": "genuine payload of BW-2, longer"})
	s := newServer(t, tr.dir)
	c := newClient(t, tr, s, "", fetch.Limits{})
	ctx := context.Background()
	info, err := c.Update(ctx, "BW-1")
	if err != nil {
		t.Fatal(err)
	}
	tf, err := c.Payload(ctx, info, "a.deb")
	if err != nil {
		t.Fatal(err)
	}
	url := strings.TrimPrefix(c.TargetURL(tf), s.URL)
	other, _ := c.Update(ctx, "BW-2")
	otherTF, _ := c.Payload(ctx, other, "b.deb")
	otherBytes := tr.read("targets/" + strings.TrimPrefix(c.TargetURL(otherTF), s.URL+"/targets/"))

	for _, tc := range []struct {
		name string
		body []byte
		want error
	}{
		{"arbitrary software (same length, other bytes)", []byte(strings.Repeat("X", int(tf.Length))), fetch.ErrHashMismatch},
		{"wrong software (another update's payload)", otherBytes, fetch.ErrTooLarge},
		{"endless data", append([]byte(strings.Repeat("Y", int(tf.Length))), make([]byte, 1<<20)...), fetch.ErrTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s.serveBytes(url, tc.body)
			dst := filepath.Join(t.TempDir(), "a.deb")
			err := c.Download(ctx, tf, dst, fetch.FileOptions{})
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if _, err := os.Stat(dst); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("refused payload left at %s", dst)
			}
			if _, err := os.Stat(dst + fetch.PartialSuffix); !errors.Is(err, os.ErrNotExist) && tc.want == fetch.ErrHashMismatch {
				t.Fatalf("tampered partial kept: %v", err)
			}
		})
	}
}

func TestAttackMaliciousMirrorUpdateJSON(t *testing.T) {
	tr := newTestRepo(t, InitOptions{})
	tr.publish("BW-1", map[string]string{"a.deb": "x"})
	s := newServer(t, tr.dir)
	c := newClient(t, tr, s, "", fetch.Limits{})
	ctx := context.Background()
	tf, err := c.Target(ctx, UpdatePath("BW-1"))
	if err != nil {
		t.Fatal(err)
	}
	genuine := tr.read("targets/" + strings.TrimPrefix(c.TargetURL(tf), s.URL+"/targets/"))
	// The mirror changes the installer type in update.json, keeping the
	// length the same (the WSUSpect idea: trusted name, other behaviour).
	evil := []byte(strings.Replace(string(genuine), `"archive"`, `"tarball"`, 1))
	if len(evil) != len(genuine) || string(evil) == string(genuine) {
		t.Fatal("test did not change update.json")
	}
	s.serveBytes(strings.TrimPrefix(c.TargetURL(tf), s.URL), evil)
	_, err = c.Update(ctx, "BW-1")
	if err == nil || !strings.Contains(err.Error(), "does not match its signed hash") {
		t.Fatalf("modified update.json: err = %v, want hash mismatch", err)
	}
}

func TestAttackEndlessAndSlowMetadata(t *testing.T) {
	tr := newTestRepo(t, InitOptions{})
	tr.publish("BW-1", map[string]string{"a.deb": "x"})
	s := newServer(t, tr.dir)
	t.Run("endless timestamp", func(t *testing.T) {
		s.set("/metadata/timestamp.json", func(w http.ResponseWriter, r *http.Request) {
			chunk := make([]byte, 32<<10)
			for i := 0; i < 1024; i++ {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		})
		defer s.reset()
		err := newClient(t, tr, s, "", fetch.Limits{}).Refresh(context.Background())
		var lm *metadata.ErrDownloadLengthMismatch
		if !errors.As(err, &lm) && !errors.Is(err, fetch.ErrTooLarge) {
			t.Fatalf("endless timestamp: err = %v, want a length error", err)
		}
	})
	t.Run("slow retrieval", func(t *testing.T) {
		body := tr.read("metadata/timestamp.json")
		s.set("/metadata/timestamp.json", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", fmt.Sprint(len(body)))
			for _, b := range body {
				if _, err := w.Write([]byte{b}); err != nil {
					return
				}
				w.(http.Flusher).Flush()
				select {
				case <-r.Context().Done():
					return
				case <-time.After(50 * time.Millisecond):
				}
			}
		})
		defer s.reset()
		lim := fetch.Limits{MinSpeed: 1000, SpeedWindow: 300 * time.Millisecond, Timeout: 10 * time.Second}
		err := newClient(t, tr, s, "", lim).Refresh(context.Background())
		if !errors.Is(err, fetch.ErrTooSlow) && !errors.Is(err, fetch.ErrTimeout) {
			t.Fatalf("slow retrieval: err = %v, want ErrTooSlow", err)
		}
	})
}

func TestAttackInjectedUnsignedMetadata(t *testing.T) {
	tr := newTestRepo(t, InitOptions{})
	tr.publish("BW-1", map[string]string{"a.deb": "x"})
	s := newServer(t, tr.dir)
	// A man in the middle strips the signatures and raises the version, as
	// if metadata could be trusted for where it came from.
	ts := tr.timestamp()
	ts.Signed.Version += 5
	ts.ClearSignatures()
	b, _ := ts.ToBytes(false)
	s.serveBytes("/metadata/timestamp.json", b)
	err := newClient(t, tr, s, "", fetch.Limits{}).Refresh(context.Background())
	var unsigned *metadata.ErrUnsignedMetadata
	if !errors.As(err, &unsigned) {
		t.Fatalf("unsigned timestamp: err = %v, want ErrUnsignedMetadata", err)
	}
}

func TestAttackKeyCompromiseBelowThreshold(t *testing.T) {
	tr := newTestRepo(t, InitOptions{RootKeys: 3, RootThreshold: 2})
	tr.publish("BW-1", map[string]string{"a.deb": "x"})
	s := newServer(t, tr.dir)
	// The attacker stole one of the three root keys and signs a root v2
	// that hands every role to a key of their own.
	root, err := metadata.Root().FromBytes(tr.read("metadata/1.root.json"))
	if err != nil {
		t.Fatal(err)
	}
	stolen := tr.keys("root")[0]
	evilKey, err := generateKey(filepath.Join(t.TempDir(), "evil.key"))
	if err != nil {
		t.Fatal(err)
	}
	root.Signed.Version = 2
	for _, role := range []string{metadata.ROOT, metadata.TIMESTAMP, metadata.SNAPSHOT, metadata.TARGETS} {
		for _, id := range append([]string(nil), root.Signed.Roles[role].KeyIDs...) {
			root.Signed.RevokeKey(id, role)
		}
		root.Signed.AddKey(evilKey.public, role)
	}
	root.Signed.Roles[metadata.ROOT].Threshold = 1
	s.serveBytes("/metadata/2.root.json", resign(t, root, stolen, evilKey))
	err = newClient(t, tr, s, "", fetch.Limits{}).Refresh(context.Background())
	var unsigned *metadata.ErrUnsignedMetadata
	if !errors.As(err, &unsigned) {
		t.Fatalf("root signed by 1 of 2 needed keys: err = %v, want ErrUnsignedMetadata", err)
	}
	// The same with two stolen keys would be accepted: the test would fail
	// if the threshold were not what stops it.
	s.serveBytes("/metadata/2.root.json", resign(t, root, tr.keys("root")[0], tr.keys("root")[1], evilKey))
	c := newClient(t, tr, s, "", fetch.Limits{})
	err = c.Refresh(context.Background())
	if errors.As(err, &unsigned) && strings.Contains(err.Error(), "root") {
		t.Fatalf("root signed by a threshold of keys was refused as root: %v", err)
	}
}

func TestRootRotationChain(t *testing.T) {
	tr := newTestRepo(t, InitOptions{RootKeys: 3, RootThreshold: 2})
	tr.publish("BW-1", map[string]string{"a.deb": "x"})
	s := newServer(t, tr.dir)
	cache := t.TempDir()
	mustRefreshAndLookUp(t, newClient(t, tr, s, cache, fetch.Limits{}), "BW-1")
	ctx := context.Background()
	steps := []RotateOptions{{Keys: 2, Threshold: 2}, {Keys: 1, Threshold: 1}, {Keys: 4, Threshold: 3}, {}}
	for i, o := range steps {
		res, err := tr.repo.Rotate(ctx, metadata.ROOT, o)
		if err != nil {
			t.Fatalf("rotation %d: %v", i+1, err)
		}
		if res.RootVersion != int64(i+2) {
			t.Fatalf("rotation %d made root version %d, want %d", i+1, res.RootVersion, i+2)
		}
	}
	tr.publish("BW-2", map[string]string{"b.deb": "y"})
	// A client that knows root v1 walks v2 → v5 and trusts the new keys;
	// so does one that saw v1 only in its cache.
	mustRefreshAndLookUp(t, newClient(t, tr, s, cache, fetch.Limits{}), "BW-2")
	mustRefreshAndLookUp(t, newClient(t, tr, s, "", fetch.Limits{}), "BW-2")
	root, _ := metadata.Root().FromBytes(tr.read(filepath.Join(MetadataDir, "root.json")))
	if root.Signed.Version != 5 || len(root.Signed.Roles[metadata.ROOT].KeyIDs) != 4 || root.Signed.Roles[metadata.ROOT].Threshold != 3 {
		t.Fatalf("final root: version %d, %d keys, threshold %d; want 5, 4, 3", root.Signed.Version, len(root.Signed.Roles[metadata.ROOT].KeyIDs), root.Signed.Roles[metadata.ROOT].Threshold)
	}
	if rep, err := Verify(ctx, tr.dir, nil, tr.clock.Now()); err != nil || !rep.OK() || rep.RootVersion != 5 {
		t.Fatalf("verify after rotations: %v %+v", err, rep)
	}
	// A chain with a broken link (v3 not signed by v2's keys) stops there.
	v3 := tr.read("metadata/3.root.json")
	m, _ := metadata.Root().FromBytes(v3)
	s.serveBytes("/metadata/3.root.json", resign(t, m, tr.keys("root")[0]))
	err := newClient(t, tr, s, "", fetch.Limits{}).Refresh(ctx)
	var unsigned *metadata.ErrUnsignedMetadata
	if !errors.As(err, &unsigned) {
		t.Fatalf("broken root chain: err = %v, want ErrUnsignedMetadata", err)
	}
}
