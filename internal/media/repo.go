package media

import (
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/trustedmetadata"

	"github.com/bulwarkhq/bulwark/internal/capread"
	"github.com/bulwarkhq/bulwark/internal/tuf"
)

// Caps on metadata files read from a repository or from media (the same
// as the TUF client's).
const (
	maxRootSize      = 512 << 10
	maxTimestampSize = 16 << 10
	maxSnapshotSize  = 4 << 20
	maxTargetsSize   = 8 << 20
)

// DefaultMaxAge is how long after its timestamp expired media are still
// accepted. Offline there is no fresher timestamp to ask for, so expiry is
// judged at the moment the media's timestamp was still valid; this bound
// keeps old media (with since-fixed flaws) from being replayed for ever.
const DefaultMaxAge = 90 * 24 * time.Hour

// Error is one problem and where it is, a path relative to the media or
// repository directory.
type Error struct {
	Where string `json:"where"`
	What  string `json:"what"`
}

func (e *Error) Error() string { return e.Where + ": " + e.What }

func errAt(where, format string, args ...any) *Error {
	return &Error{Where: filepath.ToSlash(where), What: fmt.Sprintf(format, args...)}
}

// repoState is a TUF repository directory (vendor or site) verified from a
// pinned first root: the files that make its current state and every
// target it signs.
type repoState struct {
	dir       string
	rootV     int64
	tsVersion int64
	tsExpires time.Time
	meta      []string                         // metadata file names of the current state, sorted
	metaBytes map[string][]byte                // each one's bytes, as verified
	targets   map[string]*metadata.TargetFiles // every signed target path (top-level and bins)
}

// freshness says how a repository's expiry dates are judged.
type freshness struct {
	now    time.Time
	maxAge time.Duration // 0: online, expiry judged at now
}

// refTime is the reference time for a repository whose timestamp expires
// at exp.
func (f freshness) refTime(exp time.Time) (time.Time, error) {
	if f.maxAge == 0 || f.now.Before(exp) {
		return f.now, nil
	}
	if f.now.Sub(exp) > f.maxAge {
		return time.Time{}, fmt.Errorf("its timestamp expired on %s, more than %v ago: media this old are refused (make new ones, or allow older with --max-age)", exp.UTC().Format(time.RFC3339), f.maxAge)
	}
	return exp.Add(-time.Second), nil
}

// loadRepo verifies the repository in dir from root (its first version,
// whose fingerprint the caller checked): every root version in turn, the
// timestamp, snapshot, top-level targets and every bin.
func loadRepo(dir, rel string, root []byte, fr freshness) (*repoState, error) {
	meta := func(name string) string { return filepath.Join(rel, tuf.MetadataDir, name) }
	read := func(name string, max int64) ([]byte, error) {
		b, err := capread.File(filepath.Join(dir, tuf.MetadataDir, name), max)
		if errors.Is(err, os.ErrNotExist) {
			return nil, errAt(meta(name), "missing")
		}
		if err != nil {
			return nil, errAt(meta(name), "cannot read: %v", err)
		}
		return b, nil
	}
	st := &repoState{dir: dir, targets: map[string]*metadata.TargetFiles{}, metaBytes: map[string][]byte{}}
	keep := func(name string, b []byte) {
		st.meta = append(st.meta, name)
		st.metaBytes[name] = b
	}
	tsBytes, err := read("timestamp.json", maxTimestampSize)
	if err != nil {
		return nil, err
	}
	unverified, err := metadata.Timestamp().FromBytes(tsBytes)
	if err != nil {
		return nil, errAt(meta("timestamp.json"), "not timestamp metadata: %v", err)
	}
	ref, err := fr.refTime(unverified.Signed.Expires)
	if err != nil {
		return nil, errAt(meta("timestamp.json"), "%v", err)
	}
	first, err := read("1.root.json", maxRootSize)
	if err != nil {
		return nil, err
	}
	if string(first) != string(root) {
		return nil, errAt(meta("1.root.json"), "is not the pinned root (fingerprint %s, pinned %s)", tuf.RootFingerprint(first), tuf.RootFingerprint(root))
	}
	trusted, err := trustedmetadata.New(root)
	if err != nil {
		return nil, errAt(meta("1.root.json"), "not a valid self-signed root: %v", err)
	}
	trusted.RefTime = ref.UTC()
	keep("1.root.json", first)
	var latest []byte = root
	var rootChain [][]byte // 2.root.json on, as verified
	for v := int64(2); ; v++ {
		name := fmt.Sprintf("%d.root.json", v)
		b, err := capread.File(filepath.Join(dir, tuf.MetadataDir, name), maxRootSize)
		if errors.Is(err, os.ErrNotExist) {
			break
		}
		if err != nil {
			return nil, errAt(meta(name), "cannot read: %v", err)
		}
		if _, err := trusted.UpdateRoot(b); err != nil {
			return nil, errAt(meta(name), "root version %d is not trusted by version %d: %v", v, v-1, err)
		}
		keep(name, b)
		rootChain = append(rootChain, b)
		latest = b
	}
	st.rootV = trusted.Root.Signed.Version
	if cur, err := read("root.json", maxRootSize); err != nil {
		return nil, err
	} else if string(cur) != string(latest) {
		return nil, errAt(meta("root.json"), "is not %d.root.json, the latest verified root", st.rootV)
	}
	keep("root.json", latest)
	ts, err := trusted.UpdateTimestamp(tsBytes)
	if err != nil {
		return nil, errAt(meta("timestamp.json"), "%v", err)
	}
	// Offline, go-tuf cannot notice an expired root by itself at the
	// reference time; the final root must be valid then too.
	if trusted.Root.Signed.IsExpired(ref) {
		return nil, errAt(meta(fmt.Sprintf("%d.root.json", st.rootV)), "expired on %s", trusted.Root.Signed.Expires.Format(time.RFC3339))
	}
	st.tsVersion, st.tsExpires = ts.Signed.Version, ts.Signed.Expires
	keep("timestamp.json", tsBytes)
	snapName := fmt.Sprintf("%d.snapshot.json", ts.Signed.Meta["snapshot.json"].Version)
	b, err := read(snapName, maxSnapshotSize)
	if err != nil {
		return nil, err
	}
	snap, err := trusted.UpdateSnapshot(b, false)
	if err != nil {
		return nil, errAt(meta(snapName), "%v", err)
	}
	keep(snapName, b)
	snapBytes := b
	tm := snap.Signed.Meta["targets.json"]
	if tm == nil {
		return nil, errAt(meta(snapName), "lists no targets.json")
	}
	targetsName := fmt.Sprintf("%d.targets.json", tm.Version)
	if b, err = read(targetsName, maxTargetsSize); err != nil {
		return nil, err
	}
	targets, err := trusted.UpdateTargets(b)
	if err != nil {
		return nil, errAt(meta(targetsName), "%v", err)
	}
	keep(targetsName, b)
	targetsBytes := b
	for p, tf := range targets.Signed.Targets {
		tf.Path = p
		st.targets[p] = tf
	}
	if d := targets.Signed.Delegations; d != nil && d.SuccinctRoles != nil {
		names := d.SuccinctRoles.GetRoles()
		binNames := make([]string, len(names))
		for i, name := range names {
			cur := snap.Signed.Meta[name+".json"]
			if cur == nil {
				return nil, errAt(meta(snapName), "lists no bin %s", name)
			}
			binNames[i] = fmt.Sprintf("%d.%s.json", cur.Version, name)
		}
		// The chain that trusts the bins: the first worker has the one
		// verified above, each other one its own go-tuf TrustedMetadata,
		// replayed from the same verified bytes.
		chain := func(worker int) (*trustedmetadata.TrustedMetadata, error) {
			if worker == 0 {
				return trusted, nil
			}
			t, err := trustedmetadata.New(root)
			if err != nil {
				return nil, err
			}
			t.RefTime = ref.UTC()
			for _, b := range rootChain {
				if _, err := t.UpdateRoot(b); err != nil {
					return nil, err
				}
			}
			if _, err := t.UpdateTimestamp(tsBytes); err != nil {
				return nil, err
			}
			if _, err := t.UpdateSnapshot(snapBytes, false); err != nil {
				return nil, err
			}
			if _, err := t.UpdateTargets(targetsBytes); err != nil {
				return nil, err
			}
			return t, nil
		}
		bins, err := verifyBins(binNames, names, read, chain, meta)
		if err != nil {
			return nil, err
		}
		for i, bin := range bins {
			keep(binNames[i], bin.bytes)
			for p, tf := range bin.targets {
				tf.Path = p
				st.targets[p] = tf
			}
		}
	}
	sort.Strings(st.meta)
	return st, nil
}

// verifiedBin is one hashed bin's bytes and the targets it signs.
type verifiedBin struct {
	bytes   []byte
	targets map[string]*metadata.TargetFiles
}

// verifyBins reads and verifies the hashed bins (files[i] is role
// roles[i]'s current version) on every core: each worker has its own
// go-tuf TrustedMetadata, chain(worker), that verifies every bin it is
// given against the top-level targets exactly as one TrustedMetadata
// would verify them all (a bin's trust depends on the chain only, never
// on another bin). The error returned is the one of the first bin in
// order that fails, so it does not depend on which worker ran first.
func verifyBins(files, roles []string, read func(string, int64) ([]byte, error), chain func(worker int) (*trustedmetadata.TrustedMetadata, error), meta func(string) string) ([]verifiedBin, error) {
	bins := make([]verifiedBin, len(files))
	errs := make([]error, len(files))
	workers := min(runtime.GOMAXPROCS(0), (len(files)+63)/64)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t, err := chain(w)
			for i := w; i < len(files); i += workers {
				if err != nil {
					errs[i] = errAt(meta(files[i]), "%v", err)
					continue
				}
				b, rerr := read(files[i], maxTargetsSize)
				if rerr != nil {
					errs[i] = rerr
					continue
				}
				bin, verr := t.UpdateDelegatedTargets(b, roles[i], metadata.TARGETS)
				if verr != nil {
					errs[i] = errAt(meta(files[i]), "%v", verr)
					continue
				}
				bins[i] = verifiedBin{bytes: b, targets: bin.Signed.Targets}
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return bins, nil
}

// targetFile is where a target's bytes are under consistent snapshots:
// targets/<dir>/<sha256>.<base>, relative to the repository.
func targetFile(tf *metadata.TargetFiles) string {
	dir, base := filepath.Split(tf.Path)
	return filepath.Join(tuf.TargetsDir, dir, hex.EncodeToString(tf.Hashes["sha256"])+"."+base)
}
