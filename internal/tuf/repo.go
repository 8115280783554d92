// Package tuf holds Bulwark's TUF repositories on top of go-tuf v2: the vendor
// repository a publisher signs updates into (create, publish, refresh, rotate,
// expire, verify) and the client side that the server's sync and the agent use
// to look updates up and download payloads with every byte verified.
//
// It must not trust anything it reads from a repository before go-tuf has
// verified it from a trusted root, must not hold payloads in memory (they
// stream through internal/fetch), and must never leave a repository that a
// client cannot verify, whatever point a publish is interrupted at.
package tuf

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/bulwarkhq/bulwark/internal/atomicfile"
	"github.com/bulwarkhq/bulwark/internal/catalog"
)

// Directory and file names inside a vendor repository directory. A static
// file server over metadata/ and targets/ is a standard TUF repository;
// keys/ must never be served.
const (
	MetadataDir = "metadata"
	TargetsDir  = "targets"
	KeysDir     = "keys"
	configFile  = "bulwark-repo.json"
	lockFile    = ".lock"

	// binsRole is the name prefix of the succinct hashed bins (TAP 15).
	binsRole = "bins"

	// formatVersion is the version of the on-disk layout. Open refuses a
	// repository of another version and says what to do.
	formatVersion = 1
)

// Errors callers branch on.
var (
	ErrNotRepository = errors.New("not a bulwark repository")
	ErrExists        = errors.New("update already published with different content")
	ErrUnknownUpdate = errors.New("no such update")
	ErrBusy          = errors.New("repository is locked by another bulwark process")
)

// Expiry holds how long each role's metadata stays valid after signing.
type Expiry struct {
	Root      Duration `json:"root"`
	Targets   Duration `json:"targets"`
	Bins      Duration `json:"bins"`
	Snapshot  Duration `json:"snapshot"`
	Timestamp Duration `json:"timestamp"`
}

// DefaultExpiry is what `bulwark repo init` uses: the timestamp must be
// refreshed daily (that bounds a freeze attack to a day), the snapshot weekly,
// the online targets keys yearly, and root, which is kept offline, yearly.
var DefaultExpiry = Expiry{
	Root:      Duration(365 * 24 * time.Hour),
	Targets:   Duration(365 * 24 * time.Hour),
	Bins:      Duration(365 * 24 * time.Hour),
	Snapshot:  Duration(7 * 24 * time.Hour),
	Timestamp: Duration(24 * time.Hour),
}

// Duration is a time.Duration that reads and writes as "24h0m0s" in JSON.
type Duration time.Duration

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

type repoConfig struct {
	Format  int    `json:"format"`
	Kind    string `json:"kind"` // kindVendor or kindSite
	Name    string `json:"name"`
	BinBits int    `json:"bin_bits"` // 0 for a site repository: no bins
	Expiry  Expiry `json:"expiry"`
}

// The kinds of repository.
const (
	kindVendor = "vendor"
	kindSite   = "site"
)

// Options are the dependencies of a Repository.
type Options struct {
	Now    func() time.Time // nil → time.Now
	Logger *slog.Logger     // nil → discard
	// Shared opens a site repository that several server replicas write:
	// instead of holding the directory's lock from open to close, each write
	// takes it (blocking) for its own length, and loads the current state
	// under it; leftovers of interrupted writes are not cleaned at open
	// (another replica may be writing). The replicas' coordinator (a
	// PostgreSQL advisory lock) serialises writes across hosts.
	Shared bool
}

// Repository is a vendor repository on disk, opened for writing. It holds an
// exclusive lock on the directory until Close.
type Repository struct {
	dir  string
	cfg  repoConfig
	now  func() time.Time
	log  *slog.Logger
	lock *os.File
	// shared: no lock held between writes; writeLock takes it per write.
	shared bool

	// hook is called at named points of a write; crash tests set it to
	// kill the process there. Nil in production.
	hook func(point string)
}

// InitOptions configure a new repository.
type InitOptions struct {
	Name          string
	RootKeys      int // number of root keys (default 1)
	RootThreshold int // signatures needed on root (default 1)
	BinBits       int // 2^BinBits hashed bins (default 10: 1024 bins)
	Expiry        Expiry

	site bool // a site repository: targets listed directly, no bins
	// Site repositories only: where the one root key is written instead
	// of keys/ (offline from the start), and the signed vendor list of
	// the first root.
	rootKeyOut string
	vendors    map[string]string
}

func (o *InitOptions) defaults() error {
	if o.RootKeys == 0 {
		o.RootKeys = 1
	}
	if o.RootThreshold == 0 {
		o.RootThreshold = 1
	}
	if o.BinBits == 0 && !o.site {
		o.BinBits = 10
	}
	if o.Expiry == (Expiry{}) {
		o.Expiry = DefaultExpiry
	}
	switch {
	case o.RootKeys < 1 || o.RootKeys > 16:
		return fmt.Errorf("root keys: %d is out of range; use 1 to 16", o.RootKeys)
	case o.RootThreshold < 1 || o.RootThreshold > o.RootKeys:
		return fmt.Errorf("root threshold: %d is out of range; use 1 to the number of root keys (%d)", o.RootThreshold, o.RootKeys)
	case !o.site && (o.BinBits < 1 || o.BinBits > 16):
		return fmt.Errorf("bin bits: %d is out of range; use 1 to 16 (2 to 65536 bins)", o.BinBits)
	}
	for name, d := range map[string]Duration{"root": o.Expiry.Root, "targets": o.Expiry.Targets, "bins": o.Expiry.Bins, "snapshot": o.Expiry.Snapshot, "timestamp": o.Expiry.Timestamp} {
		if time.Duration(d) < time.Minute {
			return fmt.Errorf("%s expiry: %v is too short; use at least 1m", name, time.Duration(d))
		}
	}
	if o.Name == "" {
		o.Name = "bulwark"
	}
	if !o.site {
		// A vendor repository's name is what servers and agents call it.
		if err := catalog.CheckVendorName(o.Name); err != nil {
			return err
		}
	}
	return nil
}

func (o Options) withDefaults() Options {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Init creates a new vendor repository in dir (which must not exist or be
// empty): keys for every role, root version 1, empty targets delegating to
// 2^BinBits succinct hashed bins, snapshot and timestamp.
func Init(dir string, io InitOptions, opts Options) (*Repository, error) {
	return InitContext(context.Background(), dir, io, opts)
}

// InitContext is Init that stops when ctx is done (Ctrl-C). A stopped init
// removes what it made, so that DIR is as it was (absent or empty) and a
// new init there works.
func InitContext(ctx context.Context, dir string, io InitOptions, opts Options) (*Repository, error) {
	if err := io.defaults(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	entries, err := os.ReadDir(dir)
	if err == nil && len(entries) > 0 {
		return nil, fmt.Errorf("init %s: directory is not empty; choose a new directory", dir)
	}
	existed := err == nil
	r, err := initRepo(ctx, dir, io, opts)
	if err != nil && ctx.Err() != nil {
		undoInit(dir, existed)
	}
	return r, err
}

// undoInit removes what a stopped init made in dir.
func undoInit(dir string, existed bool) {
	if !existed {
		os.RemoveAll(dir)
		return
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		os.RemoveAll(filepath.Join(dir, e.Name()))
	}
}

func initRepo(ctx context.Context, dir string, io InitOptions, opts Options) (*Repository, error) {
	for _, d := range []string{dir, filepath.Join(dir, KeysDir)} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("init: %w", err)
		}
	}
	for _, d := range []string{MetadataDir, TargetsDir} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, fmt.Errorf("init: %w", err)
		}
	}
	r := &Repository{dir: dir, now: opts.Now, log: opts.Logger,
		cfg: repoConfig{Format: formatVersion, Kind: kindVendor, Name: io.Name, BinBits: io.BinBits, Expiry: io.Expiry}}
	if io.site {
		r.cfg.Kind = kindSite
	}
	if err := r.acquire(); err != nil {
		return nil, err
	}
	if err := r.initMetadata(ctx, io); err != nil {
		r.Close()
		return nil, fmt.Errorf("init %s: %w", dir, err)
	}
	// The config file is written last: a directory without it is an init
	// that did not finish, and Open says so.
	b, _ := json.MarshalIndent(r.cfg, "", "  ")
	if err := atomicfile.WriteFile(filepath.Join(dir, configFile), append(b, '\n'), 0o644); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

func (r *Repository) initMetadata(ctx context.Context, io InitOptions) error {
	keyDir := filepath.Join(r.dir, KeysDir)
	now := r.now().UTC()
	root := metadata.Root(now.Add(time.Duration(io.Expiry.Root)))
	root.Signed.ConsistentSnapshot = true
	var rootKeys []*signingKey
	for i := 1; i <= io.RootKeys; i++ {
		path := filepath.Join(keyDir, fmt.Sprintf("root-%d.key", i))
		newKey := generateKey
		if io.rootKeyOut != "" && io.RootKeys == 1 {
			path = io.rootKeyOut
			if _, err := os.Lstat(path); err == nil {
				// An init that was interrupted made it: use it again.
				newKey = loadKey
			}
		}
		k, err := newKey(path)
		if err != nil {
			return err
		}
		rootKeys = append(rootKeys, k)
		if err := root.Signed.AddKey(k.public, metadata.ROOT); err != nil {
			return err
		}
	}
	root.Signed.Roles[metadata.ROOT].Threshold = io.RootThreshold
	if io.site {
		if err := setRootVendors(root, io.vendors); err != nil {
			return err
		}
	}
	for _, role := range []string{metadata.TARGETS, metadata.SNAPSHOT, metadata.TIMESTAMP} {
		k, err := generateKey(filepath.Join(keyDir, role+".key"))
		if err != nil {
			return err
		}
		if err := root.Signed.AddKey(k.public, role); err != nil {
			return err
		}
	}
	st := &state{bins: map[string]*metadata.Metadata[metadata.TargetsType]{}, changedBins: map[string]bool{}, ctx: ctx}
	st.root = root
	st.targets = metadata.Targets(now.Add(time.Duration(io.Expiry.Targets)))
	st.snapshot = metadata.Snapshot(now.Add(time.Duration(io.Expiry.Snapshot)))
	st.timestamp = metadata.Timestamp(now.Add(time.Duration(io.Expiry.Timestamp)))
	if !io.site {
		binsKey, err := generateKey(filepath.Join(keyDir, binsRole+".key"))
		if err != nil {
			return err
		}
		st.targets.Signed.Delegations = &metadata.Delegations{
			Keys: map[string]*metadata.Key{binsKey.id: binsKey.public},
			SuccinctRoles: &metadata.SuccinctRoles{
				KeyIDs:     []string{binsKey.id},
				Threshold:  1,
				BitLength:  io.BinBits,
				NamePrefix: binsRole,
			},
		}
		for _, name := range st.binNames() {
			bin := metadata.Targets(now.Add(time.Duration(io.Expiry.Bins)))
			bin.Signed.Version = 0 // commit bumps every changed role to 1
			st.bins[name] = bin
			st.changedBins[name] = true
		}
	}
	st.targets.Signed.Version = 0
	st.snapshot.Signed.Version = 0
	st.timestamp.Signed.Version = 0
	st.targetsChanged = true
	if err := r.writeRoot(root, rootKeys); err != nil {
		return err
	}
	return r.commit(st)
}

// Open opens an existing repository for writing.
func Open(dir string, opts Options) (*Repository, error) {
	opts = opts.withDefaults()
	b, err := os.ReadFile(filepath.Join(dir, configFile))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("open %s: %w (no %s; create one with `bulwark repo init %s`)", dir, ErrNotRepository, configFile, dir)
		}
		return nil, fmt.Errorf("open %s: %w", dir, err)
	}
	var cfg repoConfig
	if err := json.Unmarshal(b, &cfg); err != nil {
		return nil, fmt.Errorf("open %s: %s: %w", dir, configFile, err)
	}
	if cfg.Format != formatVersion {
		return nil, fmt.Errorf("open %s: repository format %d, but this bulwark reads format %d; use a bulwark release that matches the repository", dir, cfg.Format, formatVersion)
	}
	if cfg.Kind == "" {
		cfg.Kind = kindVendor
	}
	r := &Repository{dir: dir, cfg: cfg, now: opts.Now, log: opts.Logger, shared: opts.Shared}
	if r.shared {
		return r, nil
	}
	if err := r.acquire(); err != nil {
		return nil, err
	}
	for _, d := range []string{MetadataDir, TargetsDir, KeysDir} {
		if err := atomicfile.RemoveStale(filepath.Join(dir, d)); err != nil {
			r.Close()
			return nil, err
		}
	}
	return r, nil
}

// Dir is the repository's directory.
func (r *Repository) Dir() string { return r.dir }

// Name is the repository's name given at init.
func (r *Repository) Name() string { return r.cfg.Name }

// acquire takes an exclusive, non-blocking lock on the repository so that two
// publishers never interleave their writes.
func (r *Repository) acquire() error {
	f, err := os.OpenFile(filepath.Join(r.dir, lockFile), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("lock repository: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", r.dir, ErrBusy)
	}
	r.lock = f
	return nil
}

// writeLock takes the directory's lock for one write of a shared
// repository (blocking until another replica's write ends); for others the
// lock is already held since open.
func (r *Repository) writeLock() (unlock func(), err error) {
	if !r.shared {
		return func() {}, nil
	}
	f, err := os.OpenFile(filepath.Join(r.dir, lockFile), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock repository: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock repository %s: %w", r.dir, err)
	}
	return func() { f.Close() }, nil
}

// Close releases the repository's lock.
func (r *Repository) Close() error {
	if r.lock == nil {
		return nil
	}
	err := r.lock.Close()
	r.lock = nil
	return err
}

func (r *Repository) point(name string) {
	if r.hook != nil {
		r.hook(name)
	}
}

func (r *Repository) metaPath(name string) string {
	return filepath.Join(r.dir, MetadataDir, name)
}

// targetFilePath is where the bytes of target path p with the given sha256
// live: consistent snapshots prefix the base name with its hash, so a new
// version never overwrites a file that a client may be reading.
func (r *Repository) targetFilePath(p, sha256hex string) string {
	dir, base := filepath.Split(filepath.FromSlash(p))
	return filepath.Join(r.dir, TargetsDir, dir, sha256hex+"."+base)
}

// state is the repository's current metadata, loaded from what the current
// timestamp points at, plus what a write has changed.
type state struct {
	root      *metadata.Metadata[metadata.RootType]
	timestamp *metadata.Metadata[metadata.TimestampType]
	snapshot  *metadata.Metadata[metadata.SnapshotType]
	targets   *metadata.Metadata[metadata.TargetsType]
	bins      map[string]*metadata.Metadata[metadata.TargetsType]

	targetsChanged  bool
	snapshotChanged bool
	bulk            bool // many target files: written unsynced, flushed once before commit
	changedBins     map[string]bool
	// ctx, when set, stops a commit between bins (an interrupted init or
	// publish); nothing a client reads has changed by then.
	ctx context.Context
}

// load reads the current metadata. The timestamp is the single source of
// truth: whatever a crashed write left beyond it is ignored and overwritten.
func (r *Repository) load() (*state, error) {
	st := &state{bins: map[string]*metadata.Metadata[metadata.TargetsType]{}, changedBins: map[string]bool{}}
	var err error
	if st.root, err = r.latestRoot(); err != nil {
		return nil, err
	}
	if st.timestamp, err = metadata.Timestamp().FromFile(r.metaPath("timestamp.json")); err != nil {
		return nil, fmt.Errorf("load timestamp: %w", err)
	}
	sv := st.timestamp.Signed.Meta["snapshot.json"].Version
	if st.snapshot, err = metadata.Snapshot().FromFile(r.metaPath(fmt.Sprintf("%d.snapshot.json", sv))); err != nil {
		return nil, fmt.Errorf("load snapshot: %w", err)
	}
	tm, ok := st.snapshot.Signed.Meta["targets.json"]
	if !ok {
		return nil, errors.New("load snapshot: no targets.json entry")
	}
	if st.targets, err = metadata.Targets().FromFile(r.metaPath(fmt.Sprintf("%d.targets.json", tm.Version))); err != nil {
		return nil, fmt.Errorf("load targets: %w", err)
	}
	if r.cfg.Kind == kindVendor && (st.targets.Signed.Delegations == nil || st.targets.Signed.Delegations.SuccinctRoles == nil) {
		return nil, errors.New("load targets: no succinct hashed-bin delegation")
	}
	return st, nil
}

// latestRoot returns the highest N.root.json.
func (r *Repository) latestRoot() (*metadata.Metadata[metadata.RootType], error) {
	var root *metadata.Metadata[metadata.RootType]
	for v := 1; ; v++ {
		m, err := metadata.Root().FromFile(r.metaPath(fmt.Sprintf("%d.root.json", v)))
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				break
			}
			return nil, fmt.Errorf("load root version %d: %w", v, err)
		}
		root = m
	}
	if root == nil {
		return nil, errors.New("load root: no metadata/1.root.json")
	}
	return root, nil
}

// binNames lists every hashed bin; none in a site repository.
func (st *state) binNames() []string {
	if sr := st.succinct(); sr != nil {
		return sr.GetRoles()
	}
	return nil
}

func (st *state) succinct() *metadata.SuccinctRoles {
	if st.targets.Signed.Delegations == nil {
		return nil
	}
	return st.targets.Signed.Delegations.SuccinctRoles
}

// binFor names the hashed bin that holds target path p, or "" when the
// top-level targets role lists targets itself (a site repository).
func (st *state) binFor(p string) string {
	if sr := st.succinct(); sr != nil {
		return sr.GetRolesForTarget(p)[0].Name
	}
	return ""
}

// bin returns the current metadata of a bin, loading it on first use; the
// bin "" is the top-level targets role.
func (r *Repository) bin(st *state, name string) (*metadata.Metadata[metadata.TargetsType], error) {
	if name == "" {
		return st.targets, nil
	}
	if b, ok := st.bins[name]; ok {
		return b, nil
	}
	m, ok := st.snapshot.Signed.Meta[name+".json"]
	if !ok {
		return nil, fmt.Errorf("snapshot has no entry for bin %s", name)
	}
	b, err := metadata.Targets().FromFile(r.metaPath(fmt.Sprintf("%d.%s.json", m.Version, name)))
	if err != nil {
		return nil, fmt.Errorf("load bin %s: %w", name, err)
	}
	st.bins[name] = b
	return b, nil
}

// lookup returns the target info of path p, or nil when p is not a target.
func (r *Repository) lookup(st *state, p string) (*metadata.TargetFiles, error) {
	b, err := r.bin(st, st.binFor(p))
	if err != nil {
		return nil, err
	}
	return b.Signed.Targets[p], nil
}

// setTarget adds or replaces (tf != nil) or removes (tf == nil) a target.
func (r *Repository) setTarget(st *state, p string, tf *metadata.TargetFiles) error {
	name := st.binFor(p)
	b, err := r.bin(st, name)
	if err != nil {
		return err
	}
	if tf == nil {
		if _, ok := b.Signed.Targets[p]; !ok {
			return nil
		}
		delete(b.Signed.Targets, p)
	} else {
		tf.Path = p
		b.Signed.Targets[p] = tf
	}
	if name == "" {
		st.targetsChanged = true
	} else {
		st.changedBins[name] = true
	}
	return nil
}

// commit signs and writes every changed role, in the order that keeps the
// repository valid at every instant: new versions of bins and targets go
// into new files that nothing references yet, then the snapshot that
// references them, and last the timestamp, whose atomic rename is the single
// moment the new state becomes visible.
func (r *Repository) commit(st *state) error {
	now := r.now().UTC()
	keyDir := filepath.Join(r.dir, KeysDir)
	if len(st.changedBins) > 0 {
		binKeys, err := r.roleKeys(keyDir, binsRole, st.targets.Signed.Delegations.SuccinctRoles.KeyIDs, st.targets.Signed.Delegations.SuccinctRoles.Threshold)
		if err != nil {
			return err
		}
		// Many bins at once (init, bin key rotation, a yearly refresh):
		// write them all, then flush the filesystem once.
		bulk := len(st.changedBins) > 32
		for name := range st.changedBins {
			if st.ctx != nil && st.ctx.Err() != nil {
				return st.ctx.Err()
			}
			b := st.bins[name]
			b.Signed.Version = r.nextVersion(b.Signed.Version, name)
			b.Signed.Expires = now.Add(time.Duration(r.cfg.Expiry.Bins))
			fn := fmt.Sprintf("%d.%s.json", b.Signed.Version, name)
			if err := signAndWrite(r.metaPath(fn), b, binKeys, writeMode(bulk)); err != nil {
				return err
			}
			st.snapshot.Signed.Meta[name+".json"] = metadata.MetaFile(b.Signed.Version)
		}
		// One flush for all the bins, before the snapshot that refers to them.
		sync := atomicfile.SyncDir
		if bulk {
			sync = atomicfile.SyncFS
		}
		if err := sync(r.metaPath(".")); err != nil {
			return err
		}
		r.point("after-bins")
	}
	if st.targetsChanged {
		keys, err := r.topKeys(st.root, metadata.TARGETS)
		if err != nil {
			return err
		}
		st.targets.Signed.Version = r.nextVersion(st.targets.Signed.Version, metadata.TARGETS)
		st.targets.Signed.Expires = now.Add(time.Duration(r.cfg.Expiry.Targets))
		fn := fmt.Sprintf("%d.targets.json", st.targets.Signed.Version)
		if err := signAndWrite(r.metaPath(fn), st.targets, keys); err != nil {
			return err
		}
		st.snapshot.Signed.Meta["targets.json"] = metadata.MetaFile(st.targets.Signed.Version)
		r.point("after-targets")
	}

	if len(st.changedBins) > 0 || st.targetsChanged || st.snapshotChanged {
		if err := r.commitSnapshot(st, now); err != nil {
			return err
		}
	}
	keys, err := r.topKeys(st.root, metadata.TIMESTAMP)
	if err != nil {
		return err
	}
	st.timestamp.Signed.Version++
	st.timestamp.Signed.Expires = now.Add(time.Duration(r.cfg.Expiry.Timestamp))
	r.point("before-timestamp")
	if err := signAndWrite(r.metaPath("timestamp.json"), st.timestamp, keys); err != nil {
		return err
	}
	r.point("after-timestamp")
	st.changedBins = map[string]bool{}
	st.targetsChanged = false
	st.snapshotChanged = false
	return nil
}

// commitSnapshot signs a new snapshot version and points the timestamp's
// (not yet written) metadata at it, with its length and hash.
func (r *Repository) commitSnapshot(st *state, now time.Time) error {
	keys, err := r.topKeys(st.root, metadata.SNAPSHOT)
	if err != nil {
		return err
	}
	st.snapshot.Signed.Version = r.nextVersion(st.snapshot.Signed.Version, metadata.SNAPSHOT)
	st.snapshot.Signed.Expires = now.Add(time.Duration(r.cfg.Expiry.Snapshot))
	snapPath := r.metaPath(fmt.Sprintf("%d.snapshot.json", st.snapshot.Signed.Version))
	if err := signAndWrite(snapPath, st.snapshot, keys); err != nil {
		return err
	}
	r.point("after-snapshot")
	snapBytes, err := os.ReadFile(snapPath)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(snapBytes)
	mf := metadata.MetaFile(st.snapshot.Signed.Version)
	mf.Length = int64(len(snapBytes))
	mf.Hashes = metadata.Hashes{"sha256": sum[:]}
	st.timestamp.Signed.Meta["snapshot.json"] = mf
	return nil
}

// nextVersion is the next version of a role whose file name is free. A
// write interrupted before its timestamp leaves orphans under the next
// version numbers; they are skipped, never overwritten, so a versioned file
// name always means the same bytes, which mirrors and caches rely on.
func (r *Repository) nextVersion(cur int64, role string) int64 {
	v := cur + 1
	for {
		if _, err := os.Lstat(r.metaPath(fmt.Sprintf("%d.%s.json", v, role))); errors.Is(err, os.ErrNotExist) {
			return v
		}
		v++
	}
}

// signAndWrite replaces m's signatures with ones from keys and writes it
// atomically as compact JSON.
func signAndWrite[T metadata.Roles](path string, m *metadata.Metadata[T], keys []*signingKey, mode ...writeMode) error {
	m.ClearSignatures()
	for _, k := range keys {
		s, err := k.signer()
		if err != nil {
			return fmt.Errorf("sign %s: %w", filepath.Base(path), err)
		}
		if _, err := m.Sign(s); err != nil {
			return fmt.Errorf("sign %s: %w", filepath.Base(path), err)
		}
	}
	b, err := m.ToBytes(false)
	if err != nil {
		return fmt.Errorf("encode %s: %w", filepath.Base(path), err)
	}
	switch {
	case len(mode) == 0:
		return atomicfile.WriteFile(path, b, 0o644)
	case mode[0] == bulkWrite:
		return atomicfile.WriteFileUnsynced(path, b, 0o644)
	default:
		return atomicfile.WriteFileNoDirSync(path, b, 0o644)
	}
}

// writeMode says how much of a metadata write is flushed at once; both
// modes leave the flushing of the directory to the caller.
type writeMode bool

const (
	fileSyncWrite writeMode = false // fsync the file, not its directory
	bulkWrite     writeMode = true  // fsync nothing; the caller flushes the filesystem
)

// topKeys loads the keys of a top-level role that root currently lists.
func (r *Repository) topKeys(root *metadata.Metadata[metadata.RootType], role string) ([]*signingKey, error) {
	rr := root.Signed.Roles[role]
	return r.roleKeys(filepath.Join(r.dir, KeysDir), role, rr.KeyIDs, rr.Threshold)
}

// roleKeys loads the key files of role from dir, keeps those whose key id
// the metadata lists, and checks that they reach the threshold.
func (r *Repository) roleKeys(dir, role string, keyIDs []string, threshold int) ([]*signingKey, error) {
	all, err := loadRoleKeys(dir, role)
	if err != nil {
		return nil, err
	}
	want := map[string]bool{}
	for _, id := range keyIDs {
		want[id] = true
	}
	var keys []*signingKey
	for _, k := range all {
		if want[k.id] {
			keys = append(keys, k)
		}
	}
	if len(keys) < threshold {
		return nil, fmt.Errorf("sign %s: found %d of the %d keys needed in %s (key files %s*.key); bring the offline keys back or rotate the role", role, len(keys), threshold, dir, role)
	}
	return keys, nil
}

// writeRoot signs root with keys and writes it as the next N.root.json and as
// root.json, the copy clients are given as their initial trusted root.
func (r *Repository) writeRoot(root *metadata.Metadata[metadata.RootType], keys []*signingKey) error {
	if err := signAndWrite(r.metaPath(fmt.Sprintf("%d.root.json", root.Signed.Version)), root, keys); err != nil {
		return err
	}
	b, err := os.ReadFile(r.metaPath(fmt.Sprintf("%d.root.json", root.Signed.Version)))
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(r.metaPath("root.json"), b, 0o644)
}
