package tuf

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/trustedmetadata"

	"github.com/bulwarkhq/bulwark/internal/approval"
	"github.com/bulwarkhq/bulwark/internal/capread"
	"github.com/bulwarkhq/bulwark/internal/catalog"
)

// Problem is one thing wrong with a repository, and where.
type Problem struct {
	Path string `json:"path"` // relative to the repository directory
	Msg  string `json:"problem"`
}

func (p Problem) String() string { return p.Path + ": " + p.Msg }

// VerifyReport is what Verify found.
type VerifyReport struct {
	RootVersion      int64     `json:"root_version"`
	TimestampVersion int64     `json:"timestamp_version"`
	SnapshotVersion  int64     `json:"snapshot_version"`
	TimestampExpires time.Time `json:"timestamp_expires"`
	Bins             int       `json:"bins"`
	Updates          int       `json:"updates"`
	Targets          int       `json:"targets"`
	TargetBytes      int64     `json:"target_bytes"`
	Problems         []Problem `json:"problems"`
}

// OK reports whether the repository verified without problems.
func (v *VerifyReport) OK() bool { return len(v.Problems) == 0 }

// Verify checks a repository directory the way a client would, from
// metadata/1.root.json (or trustedRoot, when given) through every root
// version, the timestamp, snapshot, targets and every bin, with expiry judged
// at now; then it hashes every target file and checks every update.json and
// its payload list. It reports every problem it finds rather than stopping at
// the first, except that nothing below a role that failed can be trusted.
// It needs no keys and takes no lock.
func Verify(ctx context.Context, dir string, trustedRoot []byte, now time.Time) (*VerifyReport, error) {
	if _, err := os.Stat(filepath.Join(dir, configFile)); err != nil {
		if _, err2 := os.Stat(filepath.Join(dir, MetadataDir)); err2 != nil {
			return nil, fmt.Errorf("verify %s: %w (no %s or %s/)", dir, ErrNotRepository, configFile, MetadataDir)
		}
	}
	rep := &VerifyReport{}
	bad := func(path, format string, args ...any) {
		rep.Problems = append(rep.Problems, Problem{Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	meta := func(name string) string { return filepath.Join(MetadataDir, name) }
	read := func(name string, max int64) ([]byte, bool) {
		b, err := capread.File(filepath.Join(dir, meta(name)), max)
		if err != nil {
			bad(meta(name), "cannot read: %v", unwrapPath(err))
			return nil, false
		}
		return b, true
	}

	if trustedRoot == nil {
		b, ok := read("1.root.json", maxRootSize)
		if !ok {
			return rep, nil
		}
		trustedRoot = b
	}
	trusted, err := trustedmetadata.New(trustedRoot)
	if err != nil {
		bad(meta("1.root.json"), "not a valid self-signed root: %v", err)
		return rep, nil
	}
	trusted.RefTime = now.UTC()
	for v := trusted.Root.Signed.Version + 1; ; v++ {
		name := fmt.Sprintf("%d.root.json", v)
		b, err := capread.File(filepath.Join(dir, meta(name)), maxRootSize)
		if errors.Is(err, os.ErrNotExist) {
			break
		}
		if err != nil {
			bad(meta(name), "cannot read: %v", unwrapPath(err))
			return rep, nil
		}
		if _, err := trusted.UpdateRoot(b); err != nil {
			bad(meta(name), "root version %d is not trusted by version %d: %v", v, v-1, err)
			return rep, nil
		}
	}
	rep.RootVersion = trusted.Root.Signed.Version
	if cur, err := os.ReadFile(filepath.Join(dir, meta("root.json"))); err == nil {
		latest, _ := os.ReadFile(filepath.Join(dir, meta(fmt.Sprintf("%d.root.json", rep.RootVersion))))
		if string(cur) != string(latest) {
			bad(meta("root.json"), "differs from %d.root.json, the latest root; new clients would start from a stale root", rep.RootVersion)
		}
	}

	b, ok := read("timestamp.json", maxTimestampSize)
	if !ok {
		return rep, nil
	}
	ts, err := trusted.UpdateTimestamp(b)
	if err != nil {
		bad(meta("timestamp.json"), "%v%s", err, refreshHint(err, dir))
		return rep, nil
	}
	rep.TimestampVersion, rep.TimestampExpires = ts.Signed.Version, ts.Signed.Expires
	sv := ts.Signed.Meta["snapshot.json"].Version
	snapName := fmt.Sprintf("%d.snapshot.json", sv)
	if b, ok = read(snapName, maxSnapshotSize); !ok {
		return rep, nil
	}
	snap, err := trusted.UpdateSnapshot(b, false)
	if err != nil {
		bad(meta(snapName), "%v%s", err, refreshHint(err, dir))
		return rep, nil
	}
	rep.SnapshotVersion = snap.Signed.Version
	tm := snap.Signed.Meta["targets.json"]
	if tm == nil {
		bad(meta(snapName), "lists no targets.json")
		return rep, nil
	}
	targetsName := fmt.Sprintf("%d.targets.json", tm.Version)
	if b, ok = read(targetsName, maxTargetsSize); !ok {
		return rep, nil
	}
	targets, err := trusted.UpdateTargets(b)
	if err != nil {
		bad(meta(targetsName), "%v%s", err, refreshHint(err, dir))
		return rep, nil
	}
	all := map[string]*metadata.TargetFiles{}
	where := map[string]string{}
	for p, tf := range targets.Signed.Targets {
		tf.Path = p
		all[p] = tf
		where[p] = fmt.Sprintf("targets version %d", targets.Signed.Version)
	}
	if d := targets.Signed.Delegations; d != nil && d.SuccinctRoles != nil {
		sr := d.SuccinctRoles
		for _, name := range sr.GetRoles() {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			rep.Bins++
			m := snap.Signed.Meta[name+".json"]
			if m == nil {
				bad(meta(snapName), "lists no version of bin %s", name)
				continue
			}
			binName := fmt.Sprintf("%d.%s.json", m.Version, name)
			b, ok := read(binName, maxTargetsSize)
			if !ok {
				continue
			}
			bin, err := trusted.UpdateDelegatedTargets(b, name, metadata.TARGETS)
			if err != nil {
				bad(meta(binName), "%v%s", err, refreshHint(err, dir))
				continue
			}
			for p, tf := range bin.Signed.Targets {
				if got := sr.GetRolesForTarget(p)[0].Name; got != name {
					bad(meta(binName), "lists %s, which belongs in bin %s", p, got)
					continue
				}
				tf.Path = p
				all[p] = tf
				where[p] = fmt.Sprintf("%s version %d", name, bin.Signed.Version)
			}
		}
	} else if d != nil {
		bad(meta(targetsName), "delegates to roles other than succinct hashed bins, which bulwark does not write")
	}

	paths := make([]string, 0, len(all))
	damaged := map[string]bool{} // stored target files whose hash is wrong
	for p := range all {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		tf := all[p]
		rep.Targets++
		rep.TargetBytes += tf.Length
		want := hex.EncodeToString(tf.Hashes["sha256"])
		file := filepath.Join(TargetsDir, filepath.FromSlash(filepath.Dir(p)), want+"."+filepath.Base(p))
		n, sum, err := hashFile(filepath.Join(dir, file))
		if err != nil || n != tf.Length || sum != want {
			damaged[p] = true
		}
		switch {
		case err != nil:
			bad(file, "target %s listed in %s cannot be read: %v", p, where[p], unwrapPath(err))
			continue
		case n != tf.Length:
			bad(file, "target %s is %d bytes, but %s lists %d", p, n, where[p], tf.Length)
			continue
		case sum != want:
			bad(file, "target %s has sha256 %s, but %s lists %s", p, sum, where[p], want)
			continue
		}
		if group, ok := strings.CutPrefix(p, "approvals/"); ok {
			b, err := capread.File(filepath.Join(dir, file), approval.MaxSize)
			if err == nil {
				var d *approval.Document
				if d, err = approval.Parse(b); err == nil && d.Group+".json" != group {
					err = fmt.Errorf("document is for group %q", d.Group)
				}
			}
			if err != nil {
				bad(file, "approvals %s: %v", p, unwrapPath(err))
			}
			continue
		}
		id, isUpdate := strings.CutSuffix(strings.TrimPrefix(p, "updates/"), "/update.json")
		if !isUpdate || !strings.HasPrefix(p, "updates/") {
			continue
		}
		rep.Updates++
		b, err := capread.File(filepath.Join(dir, file), catalog.MaxJSONSize)
		if err != nil {
			bad(file, "cannot read: %v", unwrapPath(err))
			continue
		}
		u, err := catalog.ParseJSON(b)
		if err != nil {
			bad(file, "update.json of %s does not parse: %v", id, err)
			continue
		}
		if u.ID != id {
			bad(file, "update.json says id %q but is published as %s", u.ID, id)
		}
		if u.Withdrawn {
			continue
		}
		for _, pl := range u.Payloads {
			ptf := all[PayloadPath(id, pl.File)]
			switch {
			case ptf == nil:
				bad(file, "update %s names payload %s, which is not a signed target", id, pl.File)
			case ptf.Length != pl.Length || hex.EncodeToString(ptf.Hashes["sha256"]) != pl.SHA256:
				bad(file, "update %s lists payload %s with length %d sha256 %s, but its signed target has length %d sha256 %s",
					id, pl.File, pl.Length, pl.SHA256, ptf.Length, hex.EncodeToString(ptf.Hashes["sha256"]))
			case u.Installer.Type == catalog.InstallerDeb && !damaged[PayloadPath(id, pl.File)]:
				tp := PayloadPath(id, pl.File)
				stored := filepath.Join(TargetsDir, filepath.FromSlash(filepath.Dir(tp)), pl.SHA256+"."+filepath.Base(tp))
				if err := checkDebPayload(u, pl, filepath.Join(dir, stored)); err != nil {
					bad(stored, "%v", unwrapPath(err))
				}
			}
		}
	}
	return rep, nil
}

// Size caps for metadata read from a repository, whether from disk or the
// network. The snapshot cap allows 65536 bins.
const (
	maxRootSize      = 512 << 10
	maxTimestampSize = 16 << 10
	maxSnapshotSize  = 4 << 20
	maxTargetsSize   = 8 << 20
)

func refreshHint(err error, dir string) string {
	var exp *metadata.ErrExpiredMetadata
	if errors.As(err, &exp) {
		return fmt.Sprintf(" (run `bulwark repo refresh %s` on a timer to keep it fresh)", dir)
	}
	return ""
}

// unwrapPath drops the path from *os.PathError, which Problem already names.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
