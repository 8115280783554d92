package tuf

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/trustedmetadata"
	"golang.org/x/sync/errgroup"

	"github.com/bulwarkhq/bulwark/internal/atomicfile"
	"github.com/bulwarkhq/bulwark/internal/capread"
	"github.com/bulwarkhq/bulwark/internal/catalog"
	"github.com/bulwarkhq/bulwark/internal/fetch"
)

// MirrorConfig configures one sync of a vendor repository from an upstream.
type MirrorConfig struct {
	// TrustedRoot is the vendor's root, pinned when the upstream was
	// configured. The mirror starts from the newest root it verified before.
	TrustedRoot []byte
	// MetadataURL and TargetsURL are the upstream's directories.
	MetadataURL, TargetsURL string
	// Dir is the local mirror: Dir/metadata and Dir/targets are served as
	// they are, byte for byte what the vendor signed.
	Dir string
	// Fetcher moves the bytes; nil → fetch.New with defaults.
	Fetcher *fetch.Client
	// Include filters updates (product, classification, severity); a
	// filtered-out update keeps its small update.json but not its payloads.
	// Nil includes everything.
	Include func(*catalog.Update) bool
	// MetadataOnly fetches no payloads at all: agents fetch them from the
	// upstream, still verified against the signed hashes.
	MetadataOnly bool
	// Now is the reference time for expiry (tests); nil → time.Now.
	Now func() time.Time
	// Limits bound each metadata download; MaxBytes is set per file.
	Limits fetch.Limits
	// Progress, if set, is told about each payload as it downloads.
	Progress func(path string, done, total int64)
	// Report, if set, is told how far the whole sync has come whenever
	// that changes (a phase begins, an update is scanned, a payload is
	// planned or grows). It is called from the sync's goroutines one at a
	// time and must not block.
	Report func(MirrorProgress)
}

// MirrorProgress is how far a sync has come. The totals grow while the
// sync runs: the updates to scan are known once the changed bins are
// verified, the payloads to fetch as their updates are scanned.
type MirrorProgress struct {
	// Phase is "metadata" (root, timestamp, snapshot, targets and bins),
	// "targets" (updates and payloads) or "switch" (flushing, then the
	// new timestamp).
	Phase string `json:"phase"`
	// UpdatesTotal is the update.json targets in the changed bins;
	// UpdatesDone those scanned (present or fetched, payloads done).
	UpdatesTotal int `json:"updates_total"`
	UpdatesDone  int `json:"updates_done"`
	// PayloadsTotal and BytesTotal are the payloads to fetch (not present
	// from an earlier sync) and their size, as far as known;
	// PayloadsDone and BytesDone what of them is on disk, the payloads
	// in flight included (a payload resumed from an interrupted sync
	// counts the part it had).
	PayloadsTotal int   `json:"payloads_total"`
	PayloadsDone  int   `json:"payloads_done"`
	BytesTotal    int64 `json:"bytes_total"`
	BytesDone     int64 `json:"bytes_done"`
}

// MirrorResult says what a sync did.
type MirrorResult struct {
	Changed          bool  `json:"changed"`
	TimestampVersion int64 `json:"timestamp_version"`
	Updates          int   `json:"updates"`          // update.json targets in the changed bins
	UpdatesFetched   int   `json:"updates_fetched"`  // update.json files downloaded
	PayloadsFetched  int   `json:"payloads_fetched"` // payload files downloaded
	BinsFetched      int   `json:"bins_fetched"`
	BytesFetched     int64 `json:"bytes_fetched"`
}

// Mirror brings a local copy of a vendor repository up to date with an
// upstream. Everything is verified with TUF from the pinned root before it
// becomes visible: new metadata and targets are written under names nothing
// refers to yet, and the timestamp, written last and atomically, switches
// the mirror to the new state. Only bins whose version changed are fetched
// and scanned, and only targets not already present are downloaded. A sync
// interrupted at any point (kill -9 included) leaves the previous state
// served, and the next sync finishes the work, resuming partial payloads.
func Mirror(ctx context.Context, cfg MirrorConfig) (*MirrorResult, error) {
	if len(cfg.TrustedRoot) == 0 || cfg.MetadataURL == "" || cfg.TargetsURL == "" || cfg.Dir == "" {
		return nil, errors.New("mirror: trusted root, upstream URLs and a directory are required")
	}
	if cfg.Fetcher == nil {
		cfg.Fetcher = fetch.New(fetch.Options{})
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	m := &mirror{cfg: cfg, res: &MirrorResult{}}
	for _, d := range []string{cfg.Dir, m.local(MetadataDir, ""), m.local(TargetsDir, "")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("mirror: %w", err)
		}
	}
	unlock, err := lockDir(cfg.Dir)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := atomicfile.RemoveStale(m.local(MetadataDir, "")); err != nil {
		return nil, err
	}
	if err := m.run(ctx); err != nil {
		return nil, fmt.Errorf("mirror %s: %w", cfg.MetadataURL, err)
	}
	return m.res, nil
}

// mirrorParallel is how many targets a sync fetches at once.
const mirrorParallel = 8

type mirror struct {
	mu       sync.Mutex // guards res, prog, inflight and trusted once targets are fetched in parallel
	prog     MirrorProgress
	inflight map[string]int64 // bytes on disk of each payload being fetched
	oldSnap  *metadata.Metadata[metadata.SnapshotType]
	cfg      MirrorConfig
	res      *MirrorResult
	trusted  *trustedmetadata.TrustedMetadata
	hook     func(point string) // crash tests
}

// report changes the progress with f and tells cfg.Report.
func (m *mirror) report(f func(p *MirrorProgress)) {
	if m.cfg.Report == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	f(&m.prog)
	m.cfg.Report(m.prog)
}

// payloadBytes records that payload p has done bytes on disk.
func (m *mirror) payloadBytes(p string, done int64) {
	m.report(func(pr *MirrorProgress) {
		if m.inflight == nil {
			m.inflight = map[string]int64{}
		}
		pr.BytesDone += done - m.inflight[p]
		m.inflight[p] = done
	})
}

func (m *mirror) point(name string) {
	if m.hook != nil {
		m.hook(name)
	}
}

// consistent reports whether the trusted root asks for consistent
// snapshots: versioned metadata names and hash-prefixed target names.
func (m *mirror) consistent() bool { return m.trusted.Root.Signed.ConsistentSnapshot }

// remoteMeta is the upstream's name of a version of a role's metadata.
func (m *mirror) remoteMeta(version int64, role string) string {
	if m.consistent() {
		return fmt.Sprintf("%d.%s.json", version, role)
	}
	return role + ".json"
}

func (m *mirror) local(sub, name string) string { return filepath.Join(m.cfg.Dir, sub, name) }

func (m *mirror) remote(name string) string {
	return strings.TrimSuffix(m.cfg.MetadataURL, "/") + "/" + name
}

// fetchMeta downloads one metadata file from the upstream.
func (m *mirror) fetchMeta(ctx context.Context, name string, max int64) ([]byte, error) {
	lim := m.cfg.Limits
	lim.MaxBytes = max
	b, err := m.cfg.Fetcher.Bytes(ctx, m.remote(name), lim)
	if err != nil {
		return nil, err
	}
	m.res.BytesFetched += int64(len(b))
	return b, nil
}

// localOrRemote returns a versioned metadata file from the mirror when a
// previous (perhaps interrupted) sync already fetched it, else from the
// upstream, and says which.
func (m *mirror) localOrRemote(ctx context.Context, version int64, role string, max int64) ([]byte, bool, error) {
	if b, err := capread.File(m.local(MetadataDir, fmt.Sprintf("%d.%s.json", version, role)), max); err == nil {
		return b, false, nil
	}
	b, err := m.fetchMeta(ctx, m.remoteMeta(version, role), max)
	return b, err == nil, err
}

func (m *mirror) run(ctx context.Context) error {
	m.report(func(p *MirrorProgress) { p.Phase = "metadata" })
	// Root: start from the newest root this mirror verified before, else
	// the pinned one; walk every new version.
	root := m.cfg.TrustedRoot
	if b, err := capread.File(m.local(MetadataDir, "root.json"), maxRootSize); err == nil {
		if _, err := trustedmetadata.New(b); err == nil && rootVersion(b) > rootVersion(root) {
			root = b
		}
	}
	trusted, err := trustedmetadata.New(root)
	if err != nil {
		return fmt.Errorf("trusted root: %w", err)
	}
	trusted.RefTime = m.cfg.Now().UTC()
	m.trusted = trusted
	if err := atomicfile.WriteFile(m.local(MetadataDir, fmt.Sprintf("%d.root.json", trusted.Root.Signed.Version)), root, 0o644); err != nil {
		return err
	}
	latestRoot := root
	for v := trusted.Root.Signed.Version + 1; ; v++ {
		name := fmt.Sprintf("%d.root.json", v)
		b, err := m.fetchMeta(ctx, name, maxRootSize)
		var he *fetch.HTTPError
		if errors.As(err, &he) && he.StatusCode == 404 {
			break
		}
		if err != nil {
			return err
		}
		if _, err := trusted.UpdateRoot(b); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		// A verified root version is immutable: safe to serve at once.
		if err := atomicfile.WriteFile(m.local(MetadataDir, name), b, 0o644); err != nil {
			return err
		}
		latestRoot = b
	}

	// Timestamp: the local one first, so that an upstream serving an older
	// one is a rollback; an equal version means nothing changed.
	var oldSnap *metadata.Metadata[metadata.SnapshotType]
	if b, err := capread.File(m.local(MetadataDir, "timestamp.json"), maxTimestampSize); err == nil {
		if _, err := trusted.UpdateTimestamp(b); err == nil {
			ts := trusted.Timestamp.Signed.Meta["snapshot.json"]
			if sb, err := capread.File(m.local(MetadataDir, fmt.Sprintf("%d.snapshot.json", ts.Version)), maxSnapshotSize); err == nil {
				oldSnap, _ = metadata.Snapshot().FromBytes(sb)
			}
		}
	}
	m.oldSnap = oldSnap
	tsBytes, err := m.fetchMeta(ctx, "timestamp.json", maxTimestampSize)
	if err != nil {
		return err
	}
	ts, err := trusted.UpdateTimestamp(tsBytes)
	if err != nil {
		var eq *metadata.ErrEqualVersionNumber
		if errors.As(err, &eq) {
			m.res.TimestampVersion = trusted.Timestamp.Signed.Version
			return m.writeRootCopy(latestRoot)
		}
		return fmt.Errorf("timestamp.json: %w", err)
	}
	m.res.TimestampVersion = ts.Signed.Version

	snapVersion := ts.Signed.Meta["snapshot.json"].Version
	snapName := fmt.Sprintf("%d.snapshot.json", snapVersion)
	snapBytes, _, err := m.localOrRemote(ctx, snapVersion, "snapshot", maxSnapshotSize)
	if err != nil {
		return err
	}
	snap, err := trusted.UpdateSnapshot(snapBytes, false)
	if err != nil {
		return fmt.Errorf("%s: %w", snapName, err)
	}
	// go-tuf checks the new snapshot against a trusted one only within one
	// session; check it against what this mirror served before.
	if oldSnap != nil {
		for name, old := range oldSnap.Signed.Meta {
			if cur, ok := snap.Signed.Meta[name]; !ok || cur.Version < old.Version {
				return fmt.Errorf("%s: %w: %s went from version %d to %v", snapName, &metadata.ErrBadVersionNumber{Msg: "rollback"}, name, old.Version, versionOf(cur))
			}
		}
	}
	tv := snap.Signed.Meta["targets.json"]
	if tv == nil {
		return fmt.Errorf("%s: no targets.json entry", snapName)
	}
	targetsName := fmt.Sprintf("%d.targets.json", tv.Version)
	targetsBytes, _, err := m.localOrRemote(ctx, tv.Version, "targets", maxTargetsSize)
	if err != nil {
		return err
	}
	targets, err := trusted.UpdateTargets(targetsBytes)
	if err != nil {
		return fmt.Errorf("%s: %w", targetsName, err)
	}

	if err := checkDelegations(*trusted); err != nil {
		return fmt.Errorf("%s: %w", targetsName, err)
	}

	// Bins (or the top-level targets of a repository without bins).
	type verified struct {
		name, role string
		bytes      []byte
		meta       *metadata.Metadata[metadata.TargetsType]
	}
	var changed []verified
	if targets.Signed.Delegations != nil && targets.Signed.Delegations.SuccinctRoles != nil {
		for _, name := range targets.Signed.Delegations.SuccinctRoles.GetRoles() {
			if err := ctx.Err(); err != nil {
				return err
			}
			cur := snap.Signed.Meta[name+".json"]
			if cur == nil {
				return fmt.Errorf("%s: no entry for bin %s", snapName, name)
			}
			if oldSnap != nil {
				if old := oldSnap.Signed.Meta[name+".json"]; old != nil && old.Version == cur.Version {
					continue // unchanged since the last completed sync
				}
			}
			binName := fmt.Sprintf("%d.%s.json", cur.Version, name)
			b, fetched, err := m.localOrRemote(ctx, cur.Version, name, maxTargetsSize)
			if err != nil {
				return err
			}
			bin, err := trusted.UpdateDelegatedTargets(b, name, metadata.TARGETS)
			if err != nil {
				return fmt.Errorf("%s: %w", binName, err)
			}
			if bin.Signed.Delegations != nil {
				return fmt.Errorf("%s: %w: a hashed bin delegates further", binName, ErrDelegation)
			}
			if fetched {
				m.res.BinsFetched++
			}
			changed = append(changed, verified{binName, name, b, bin})
		}
	} else {
		changed = append(changed, verified{"", "", nil, targets})
	}

	// Targets of the changed bins: every update.json, and the payloads of
	// the updates the filter includes.
	// Several targets at once: a sync is mostly waiting on round trips.
	m.report(func(p *MirrorProgress) {
		p.Phase = "targets"
		for _, v := range changed {
			for t := range v.meta.Signed.Targets {
				if strings.HasPrefix(t, "updates/") && strings.HasSuffix(t, "/update.json") {
					p.UpdatesTotal++
				}
			}
		}
	})
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(mirrorParallel)
	for _, v := range changed {
		for p, tf := range v.meta.Signed.Targets {
			bin := v.meta
			g.Go(func() error { return m.mirrorTarget(gctx, bin, p, tf) })
		}
	}
	if err := g.Wait(); err != nil {
		return err
	}
	m.point("after-targets")
	m.report(func(p *MirrorProgress) { p.Phase = "switch" })

	// Switch: metadata files under their versioned names, flushed; then the
	// timestamp.
	// A repository without consistent snapshots is read by plain names
	// (snapshot.json, targets.json, bins-0.json): those are written too,
	// and are as atomic as such a repository allows.
	files := map[string][]byte{targetsName: targetsBytes, snapName: snapBytes}
	if !m.consistent() {
		files["targets.json"], files["snapshot.json"] = targetsBytes, snapBytes
	}
	for _, v := range changed {
		if v.name != "" {
			files[v.name] = v.bytes
			if !m.consistent() {
				files[v.role+".json"] = v.bytes
			}
		}
	}
	for name, b := range files {
		if err := atomicfile.WriteFileUnsynced(m.local(MetadataDir, name), b, 0o644); err != nil {
			return err
		}
	}
	if err := atomicfile.SyncFS(m.cfg.Dir); err != nil {
		return err
	}
	m.point("before-timestamp")
	if err := m.writeRootCopy(latestRoot); err != nil {
		return err
	}
	if err := atomicfile.WriteFile(m.local(MetadataDir, "timestamp.json"), tsBytes, 0o644); err != nil {
		return err
	}
	m.res.Changed = true
	return nil
}

// mirrorTarget makes sure one target is present (update.json always;
// payloads when included and not metadata-only).
func (m *mirror) mirrorTarget(ctx context.Context, bin *metadata.Metadata[metadata.TargetsType], p string, tf *metadata.TargetFiles) error {
	if !strings.HasPrefix(p, "updates/") || !strings.HasSuffix(p, "/update.json") {
		return nil // payloads are handled with their update
	}
	m.count(func(r *MirrorResult) { r.Updates++ })
	if err := m.mirrorUpdate(ctx, bin, p, tf); err != nil {
		return err
	}
	m.report(func(p *MirrorProgress) { p.UpdatesDone++ })
	return nil
}

// mirrorUpdate makes sure update.json p and the payloads it needs are
// present.
func (m *mirror) mirrorUpdate(ctx context.Context, bin *metadata.Metadata[metadata.TargetsType], p string, tf *metadata.TargetFiles) error {
	id := strings.TrimSuffix(strings.TrimPrefix(p, "updates/"), "/update.json")
	if _, err := targetWant(tf); err != nil {
		return err
	}
	dst := filepath.Join(m.cfg.Dir, TargetsDir, "updates", id, targetName(tf, m.consistent()))
	if tf.Length > catalog.MaxJSONSize {
		return fmt.Errorf("%s: update.json of %d bytes is over the %d byte limit", p, tf.Length, catalog.MaxJSONSize)
	}
	b, err := capread.File(dst, tf.Length)
	if err != nil || checkTarget(tf, b) != nil {
		lim := m.cfg.Limits
		lim.MaxBytes = tf.Length
		b, err = m.cfg.Fetcher.Bytes(ctx, targetURL(m.cfg.TargetsURL, tf, m.consistent()), lim)
		if err != nil {
			return err
		}
		if err := checkTarget(tf, b); err != nil {
			return fmt.Errorf("%s: does not match its signed hash: %w", p, err)
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if err := atomicfile.WriteFileUnsynced(dst, b, 0o644); err != nil {
			return err
		}
		m.count(func(r *MirrorResult) { r.UpdatesFetched++; r.BytesFetched += int64(len(b)) })
	}
	u, err := catalog.ParseJSON(b)
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	if m.cfg.MetadataOnly || u.Withdrawn || (m.cfg.Include != nil && !m.cfg.Include(u)) {
		return nil
	}
	for _, pl := range u.Payloads {
		pp := PayloadPath(id, pl.File)
		ptf, err := m.lookup(bin, pp)
		if err != nil {
			return err
		}
		psum := hex.EncodeToString(ptf.Hashes["sha256"])
		if ptf.Length != pl.Length || psum != pl.SHA256 {
			return fmt.Errorf("%s: %w: update.json and the signed target disagree", pp, ErrMismatch)
		}
		want, err := targetWant(ptf)
		if err != nil {
			return err
		}
		pdst := filepath.Join(m.cfg.Dir, TargetsDir, "updates", id, targetName(ptf, m.consistent()))
		if fi, err := os.Stat(pdst); err == nil && fi.Size() == ptf.Length && m.verifiedBefore(pp) {
			continue // in the state the mirror served before: flushed and verified
		}
		m.report(func(p *MirrorProgress) { p.PayloadsTotal++; p.BytesTotal += ptf.Length })
		var progress func(done, total int64)
		if m.cfg.Progress != nil || m.cfg.Report != nil {
			progress = func(done, total int64) {
				if m.cfg.Progress != nil {
					m.cfg.Progress(pp, done, total)
				}
				m.payloadBytes(pp, done)
			}
		}
		// Unsynced: the whole sync is flushed once before the switch. A
		// file found from an interrupted sync is hashed again by File.
		err = m.cfg.Fetcher.File(ctx, targetURL(m.cfg.TargetsURL, ptf, m.consistent()), pdst, want, fetch.FileOptions{Progress: progress, NoSync: true})
		if err != nil {
			return fmt.Errorf("%s: %w", pp, err)
		}
		m.count(func(r *MirrorResult) { r.PayloadsFetched++; r.BytesFetched += ptf.Length })
		m.payloadBytes(pp, ptf.Length)
		m.report(func(p *MirrorProgress) { p.PayloadsDone++; delete(m.inflight, pp) })
	}
	return nil
}

// lookup finds a target in the bin that must hold it. Payloads hash to a
// bin of their own, which may be unchanged; it is read from the mirror (or
// fetched) and verified like any other.
func (m *mirror) lookup(bin *metadata.Metadata[metadata.TargetsType], p string) (*metadata.TargetFiles, error) {
	if tf, ok := bin.Signed.Targets[p]; ok {
		return tf, nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	d := m.trusted.Targets[metadata.TARGETS].Signed.Delegations
	if d == nil || d.SuccinctRoles == nil {
		return nil, fmt.Errorf("%s: not a signed target", p)
	}
	name := d.SuccinctRoles.GetRolesForTarget(p)[0].Name
	other, ok := m.trusted.Targets[name]
	if !ok {
		cur := m.trusted.Snapshot.Signed.Meta[name+".json"]
		if cur == nil {
			return nil, fmt.Errorf("%s: no entry for bin %s", p, name)
		}
		b, _, err := m.localOrRemote(context.Background(), cur.Version, name, maxTargetsSize)
		if err != nil {
			return nil, err
		}
		if other, err = m.trusted.UpdateDelegatedTargets(b, name, metadata.TARGETS); err != nil {
			return nil, fmt.Errorf("%d.%s.json: %w", cur.Version, name, err)
		}
	}
	tf, ok := other.Signed.Targets[p]
	if !ok {
		return nil, fmt.Errorf("%s: not a signed target", p)
	}
	return tf, nil
}

// verifiedBefore reports whether target path p was already listed, with
// the same version of its bin, in the snapshot this mirror served before:
// then its file was written and flushed by a sync that completed.
func (m *mirror) verifiedBefore(p string) bool {
	m.mu.Lock() // lookup adds bins to m.trusted from other goroutines
	defer m.mu.Unlock()
	if m.oldSnap == nil || m.trusted.Targets[metadata.TARGETS] == nil {
		return false
	}
	d := m.trusted.Targets[metadata.TARGETS].Signed.Delegations
	if d == nil || d.SuccinctRoles == nil {
		return false
	}
	name := d.SuccinctRoles.GetRolesForTarget(p)[0].Name + ".json"
	old, cur := m.oldSnap.Signed.Meta[name], m.trusted.Snapshot.Signed.Meta[name]
	return old != nil && cur != nil && old.Version == cur.Version
}

func (m *mirror) count(f func(*MirrorResult)) {
	m.mu.Lock()
	f(m.res)
	m.mu.Unlock()
}

func (m *mirror) writeRootCopy(root []byte) error {
	cur, err := os.ReadFile(m.local(MetadataDir, "root.json"))
	if err == nil && string(cur) == string(root) {
		return nil
	}
	return atomicfile.WriteFile(m.local(MetadataDir, "root.json"), root, 0o644)
}

func rootVersion(b []byte) int64 {
	r, err := metadata.Root().FromBytes(b)
	if err != nil {
		return 0
	}
	return r.Signed.Version
}

func versionOf(m *metadata.MetaFiles) any {
	if m == nil {
		return "missing"
	}
	return m.Version
}

// lockDir takes an exclusive lock on dir/.lock, so that two syncs of one
// mirror never interleave.
func lockDir(dir string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", dir, ErrBusy)
	}
	return func() { f.Close() }, nil
}
