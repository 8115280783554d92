package tuf

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// simRepo is an in-memory TUF repository served over loopback HTTP, built
// with go-tuf's metadata API rather than Bulwark's publisher, so that tests
// can give it shapes Bulwark never writes: no consistent snapshots,
// sha512-only or wrong extra hashes, named delegations. It plays the
// "other TUF repository" of the TUF conformance suite.
type simRepo struct {
	t          testing.TB
	now        time.Time
	consistent bool
	keys       map[string]*signingKey // role → key (one per role)

	root      *metadata.Metadata[metadata.RootType]
	targets   *metadata.Metadata[metadata.TargetsType]
	delegated map[string]*metadata.Metadata[metadata.TargetsType] // role → metadata
	content   map[string][]byte                                   // target path → bytes

	mu       sync.Mutex
	files    map[string][]byte // URL path → bytes
	requests []string
	srv      *httptest.Server
	version  int64
}

func newSimRepo(t testing.TB, consistent bool) *simRepo {
	t.Helper()
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	s := &simRepo{t: t, now: now, consistent: consistent, keys: map[string]*signingKey{},
		delegated: map[string]*metadata.Metadata[metadata.TargetsType]{}, content: map[string][]byte{}, files: map[string][]byte{}}
	expires := now.Add(30 * 24 * time.Hour)
	s.root = metadata.Root(expires)
	s.root.Signed.ConsistentSnapshot = consistent
	for _, role := range []string{metadata.ROOT, metadata.TARGETS, metadata.SNAPSHOT, metadata.TIMESTAMP} {
		k := s.newKey(role)
		if err := s.root.Signed.AddKey(k.public, role); err != nil {
			t.Fatal(err)
		}
	}
	s.targets = metadata.Targets(expires)
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.requests = append(s.requests, r.URL.Path)
		b, ok := s.files[r.URL.Path]
		s.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(b)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *simRepo) newKey(role string) *signingKey {
	s.t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		s.t.Fatal(err)
	}
	k, err := newSigningKey(role, priv)
	if err != nil {
		s.t.Fatal(err)
	}
	s.keys[role] = k
	return k
}

// addTarget lists content under path in role (targets or a delegated role)
// with the given hashes: "sha256", "sha512", or "bad-sha512" for a wrong
// one.
func (s *simRepo) addTarget(role, path string, content []byte, hashes ...string) *metadata.TargetFiles {
	s.t.Helper()
	tf := &metadata.TargetFiles{Length: int64(len(content)), Hashes: metadata.Hashes{}, Path: path}
	for _, h := range hashes {
		switch h {
		case "sha256":
			sum := sha256.Sum256(content)
			tf.Hashes["sha256"] = sum[:]
		case "sha512":
			sum := sha512.Sum512(content)
			tf.Hashes["sha512"] = sum[:]
		case "bad-sha512":
			sum := sha512.Sum512(append([]byte("not "), content...))
			tf.Hashes["sha512"] = sum[:]
		case "md5":
			tf.Hashes["md5"] = make([]byte, 16)
		default:
			s.t.Fatalf("sim: unknown hash %q", h)
		}
	}
	m := s.targets
	if role != metadata.TARGETS {
		m = s.delegated[role]
	}
	m.Signed.Targets[path] = tf
	s.content[path] = content
	return tf
}

// delegate adds a named delegated role from the top-level targets (or from
// another delegated role) for paths.
func (s *simRepo) delegate(from, role string, paths ...string) {
	s.t.Helper()
	parent := s.targets
	if from != metadata.TARGETS {
		parent = s.delegated[from]
	}
	k := s.newKey(role)
	if parent.Signed.Delegations == nil {
		parent.Signed.Delegations = &metadata.Delegations{Keys: map[string]*metadata.Key{}}
	}
	parent.Signed.Delegations.Keys[k.id] = k.public
	parent.Signed.Delegations.Roles = append(parent.Signed.Delegations.Roles, metadata.DelegatedRole{
		Name: role, KeyIDs: []string{k.id}, Threshold: 1, Paths: paths,
	})
	s.delegated[role] = metadata.Targets(s.now.Add(30 * 24 * time.Hour))
}

// bins delegates everything to 2^bits succinct hashed bins (Bulwark's shape).
func (s *simRepo) bins(bits int) {
	s.t.Helper()
	k := s.newKey("bins")
	s.targets.Signed.Delegations = &metadata.Delegations{
		Keys:          map[string]*metadata.Key{k.id: k.public},
		SuccinctRoles: &metadata.SuccinctRoles{KeyIDs: []string{k.id}, Threshold: 1, BitLength: bits, NamePrefix: "bins"},
	}
	for _, name := range s.targets.Signed.Delegations.SuccinctRoles.GetRoles() {
		s.delegated[name] = metadata.Targets(s.now.Add(30 * 24 * time.Hour))
		s.keys[name] = k
	}
}

// binFor names the hashed bin that holds path.
func (s *simRepo) binFor(path string) string {
	return s.targets.Signed.Delegations.SuccinctRoles.GetRolesForTarget(path)[0].Name
}

func simSign[T metadata.Roles](t testing.TB, m *metadata.Metadata[T], k *signingKey) []byte {
	t.Helper()
	return resign(t, m, k)
}

// publish signs every role with a new version and serves the result.
func (s *simRepo) publish() {
	s.t.Helper()
	s.version++
	v := s.version
	files := map[string][]byte{}
	name := func(version int64, role string) string {
		if s.consistent {
			return fmt.Sprintf("/metadata/%d.%s.json", version, role)
		}
		return "/metadata/" + role + ".json"
	}
	snap := metadata.Snapshot(s.now.Add(7 * 24 * time.Hour))
	snap.Signed.Version = v
	for role, m := range s.delegated {
		m.Signed.Version = v
		k := s.keys[role]
		files[name(v, role)] = simSign(s.t, m, k)
		snap.Signed.Meta[role+".json"] = &metadata.MetaFiles{Version: v}
	}
	s.targets.Signed.Version = v
	files[name(v, metadata.TARGETS)] = simSign(s.t, s.targets, s.keys[metadata.TARGETS])
	snap.Signed.Meta["targets.json"] = &metadata.MetaFiles{Version: v}
	files[name(v, metadata.SNAPSHOT)] = simSign(s.t, snap, s.keys[metadata.SNAPSHOT])
	ts := metadata.Timestamp(s.now.Add(24 * time.Hour))
	ts.Signed.Version = v
	ts.Signed.Meta["snapshot.json"] = &metadata.MetaFiles{Version: v}
	files["/metadata/timestamp.json"] = simSign(s.t, ts, s.keys[metadata.TIMESTAMP])
	root := simSign(s.t, s.root, s.keys[metadata.ROOT])
	files["/metadata/1.root.json"] = root
	files["/metadata/root.json"] = root
	for p, b := range s.content {
		tf := s.lookup(p)
		files["/targets/"+strings.TrimPrefix(targetURL("", tf, s.consistent), "/")] = b
	}
	s.mu.Lock()
	s.files = files
	s.mu.Unlock()
}

func (s *simRepo) lookup(p string) *metadata.TargetFiles {
	if tf, ok := s.targets.Signed.Targets[p]; ok {
		return tf
	}
	for _, m := range s.delegated {
		if tf, ok := m.Signed.Targets[p]; ok {
			return tf
		}
	}
	s.t.Fatalf("sim: %s is no target", p)
	return nil
}

// rootBytes is the first root, for a client to pin.
func (s *simRepo) rootBytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.files["/metadata/1.root.json"]
}

// requested returns and forgets the URL paths asked for so far.
func (s *simRepo) requested() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.requests
	s.requests = nil
	return r
}

func (s *simRepo) client(t testing.TB) *Client {
	t.Helper()
	c, err := NewClient(ClientConfig{
		TrustedRoot: s.rootBytes(),
		MetadataURL: s.srv.URL + "/metadata",
		TargetsURL:  s.srv.URL + "/targets",
		CacheDir:    t.TempDir(),
		Now:         func() time.Time { return s.now },
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}
