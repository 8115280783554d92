package tuf

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/bulwarkhq/bulwark/internal/atomicfile"
	"github.com/bulwarkhq/bulwark/internal/capread"
	"github.com/bulwarkhq/bulwark/internal/catalog"
)

// UpdatePath is the target path of an update's signed metadata.
func UpdatePath(id string) string { return "updates/" + id + "/update.json" }

// PayloadPath is the target path of one of an update's payload files.
func PayloadPath(id, file string) string { return "updates/" + id + "/" + file }

// PublishOptions change how Publish treats an id that is already published.
type PublishOptions struct {
	// Revise allows changed content for an existing id; the update's
	// revision number goes up by one.
	Revise bool
	// Progress, when set, is called before each update file is read
	// (n counts from 1 to count) and once with n = count+1 before the
	// commit.
	Progress func(n, count int, file string)
}

// PublishResult says what a publish did.
type PublishResult struct {
	ID       string
	Revision int
	Packages []catalog.PayloadDeb `json:",omitempty"` // what the .deb payloads say about themselves
	Changed  bool                 // false: identical content was already published
	Targets  []string             // target paths written
	Repaired []string             `json:",omitempty"` // unchanged, but these stored files were damaged and were restored
}

// Publish validates the update described by the YAML file at yamlPath, stores
// its update.json and payload files (named relative to the YAML file) as
// targets, and re-signs what changed. Publishing identical content again
// changes nothing.
func (r *Repository) Publish(ctx context.Context, yamlPath string, o PublishOptions) (*PublishResult, error) {
	res, err := r.PublishMany(ctx, []string{yamlPath}, o)
	if err != nil {
		return nil, err
	}
	return res[0], nil
}

// PublishMany publishes several updates and signs them in one commit: one
// new version of each bin they touch, one snapshot, one timestamp. An update
// may refer to one published earlier in the same call. Nothing becomes
// visible unless all of them are valid.
func (r *Repository) PublishMany(ctx context.Context, yamlPaths []string, o PublishOptions) ([]*PublishResult, error) {
	if r.cfg.Kind != kindVendor {
		return nil, fmt.Errorf("publish: %s is a %s repository; updates are published into vendor repositories", r.dir, r.cfg.Kind)
	}
	st, err := r.load()
	if err != nil {
		return nil, fmt.Errorf("publish: %w", err)
	}
	// Many files at once are written without an fsync each and flushed
	// together before the commit.
	st.bulk = len(yamlPaths) > 1
	st.ctx = ctx
	var results []*PublishResult
	for i, y := range yamlPaths {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if o.Progress != nil {
			o.Progress(i+1, len(yamlPaths), y)
		}
		res, err := r.publishOne(ctx, st, y, o)
		if err != nil {
			return nil, err
		}
		results = append(results, res)
	}
	if len(st.changedBins) == 0 && !st.targetsChanged {
		return results, nil
	}
	if st.bulk {
		if err := atomicfile.SyncFS(r.dir); err != nil {
			return nil, err
		}
	}
	r.point("after-payloads")
	if o.Progress != nil {
		o.Progress(len(yamlPaths)+1, len(yamlPaths), "")
	}
	if err := r.commit(st); err != nil {
		return nil, fmt.Errorf("publish: %w", err)
	}
	for _, res := range results {
		if res.Changed {
			r.log.Info("published update", "update", res.ID, "revision", res.Revision)
		}
	}
	return results, nil
}

// publishOne validates one update and stores its files, changing st; the
// caller commits.
func (r *Repository) publishOne(ctx context.Context, st *state, yamlPath string, o PublishOptions) (*PublishResult, error) {
	data, err := capread.File(yamlPath, catalog.MaxYAMLSize)
	if err != nil {
		return nil, fmt.Errorf("publish: %w", err)
	}
	u, err := catalog.ParseYAML(yamlPath, data)
	if err != nil {
		return nil, err
	}
	base := filepath.Dir(yamlPath)
	var problems []error
	for i := range u.Payloads {
		p := &u.Payloads[i]
		field := fmt.Sprintf("payloads[%d].file", i)
		n, sum, err := hashFile(filepath.Join(base, p.File))
		if err != nil {
			problems = append(problems, &catalog.FieldError{File: yamlPath, Line: u.Line(field), Field: field,
				Msg: fmt.Sprintf("cannot read payload: %v (payload files are named relative to the YAML file's directory)", err)})
			continue
		}
		p.Length, p.SHA256 = n, sum
		if u.Installer.Type == catalog.InstallerDeb {
			deb, err := readDebPayload(u, filepath.Join(base, p.File))
			if err != nil {
				problems = append(problems, &catalog.FieldError{File: yamlPath, Line: u.Line(field), Field: field, Msg: err.Error()})
				continue
			}
			p.Deb = deb
		}
	}
	for _, refs := range []struct {
		field string
		ids   []string
	}{{"supersedes", u.Supersedes}, {"requires", u.Requires}} {
		for i, ref := range refs.ids {
			tf, err := r.lookup(st, UpdatePath(ref))
			if err != nil {
				return nil, fmt.Errorf("publish: %w", err)
			}
			if tf == nil {
				field := fmt.Sprintf("%s[%d]", refs.field, i)
				line := u.Line(field)
				if line == 0 {
					line = u.Line(refs.field)
				}
				problems = append(problems, &catalog.FieldError{File: yamlPath, Line: line, Field: field,
					Msg: fmt.Sprintf("unknown update id %q: publish it to this repository first", ref)})
			}
		}
	}
	if len(problems) > 0 {
		return nil, errors.Join(problems...)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	old, oldJSON, err := r.readUpdate(st, u.ID)
	if err != nil && !errors.Is(err, ErrUnknownUpdate) {
		return nil, fmt.Errorf("publish: %w", err)
	}
	u.Revision = 1
	if old != nil {
		u.Revision = old.Revision
		js, err := u.JSON()
		if err != nil {
			return nil, err
		}
		if bytes.Equal(js, oldJSON) {
			// Nothing to sign, but the stored files must still be what is
			// signed: put back any that were damaged or lost.
			res := &PublishResult{ID: u.ID, Revision: u.Revision, Changed: false, Packages: payloadDebs(u)}
			for _, p := range u.Payloads {
				fixed, err := r.storeTarget(PayloadPath(u.ID, p.File), filepath.Join(base, p.File), p.Length, p.SHA256, false)
				if err != nil {
					return nil, fmt.Errorf("publish %s: %w", u.ID, err)
				}
				if fixed {
					res.Repaired = append(res.Repaired, PayloadPath(u.ID, p.File))
				}
			}
			return res, nil
		}
		if !o.Revise {
			return nil, fmt.Errorf("publish %s: %w (revision %d); publish with --revise to record revision %d", u.ID, ErrExists, old.Revision, old.Revision+1)
		}
		u.Revision = old.Revision + 1
	}
	js, err := u.JSON()
	if err != nil {
		return nil, err
	}

	res := &PublishResult{ID: u.ID, Revision: u.Revision, Changed: true, Packages: payloadDebs(u)}
	for _, p := range u.Payloads {
		tp := PayloadPath(u.ID, p.File)
		if _, err := r.storeTarget(tp, filepath.Join(base, p.File), p.Length, p.SHA256, st.bulk); err != nil {
			return nil, fmt.Errorf("publish %s: %w", u.ID, err)
		}
		sum, _ := hex.DecodeString(p.SHA256)
		if err := r.setTarget(st, tp, &metadata.TargetFiles{Length: p.Length, Hashes: metadata.Hashes{"sha256": sum}}); err != nil {
			return nil, err
		}
		res.Targets = append(res.Targets, tp)
	}
	if old != nil {
		keep := map[string]bool{}
		for _, p := range u.Payloads {
			keep[p.File] = true
		}
		for _, p := range old.Payloads {
			if !keep[p.File] {
				if err := r.setTarget(st, PayloadPath(u.ID, p.File), nil); err != nil {
					return nil, err
				}
			}
		}
	}
	if err := r.storeUpdateJSON(st, u.ID, js); err != nil {
		return nil, fmt.Errorf("publish %s: %w", u.ID, err)
	}
	res.Targets = append(res.Targets, UpdatePath(u.ID))
	sort.Strings(res.Targets)
	return res, nil
}

// storeUpdateJSON writes an update's metadata as a target file and lists it.
func (r *Repository) storeUpdateJSON(st *state, id string, js []byte) error {
	return r.storeBytes(st, UpdatePath(id), js)
}

// storeBytes writes a small target file and lists it as target path p.
func (r *Repository) storeBytes(st *state, p string, data []byte) error {
	sum := sha256.Sum256(data)
	dst := r.targetFilePath(p, hex.EncodeToString(sum[:]))
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	write := atomicfile.WriteFile
	if st.bulk {
		write = atomicfile.WriteFileUnsynced
	}
	if err := write(dst, data, 0o644); err != nil {
		return err
	}
	return r.setTarget(st, p, &metadata.TargetFiles{Length: int64(len(data)), Hashes: metadata.Hashes{"sha256": sum[:]}})
}

// storeTarget copies src into the repository as target path tp unless an
// intact copy is there already, checking that the bytes copied are the bytes
// that were hashed (the file could have changed between the two reads). It
// reports whether it wrote the file.
func (r *Repository) storeTarget(tp, src string, length int64, sha string, bulk bool) (bool, error) {
	dst := r.targetFilePath(tp, sha)
	if fi, err := os.Stat(dst); err == nil && fi.Size() == length {
		if n, sum, err := hashFile(dst); err == nil && n == length && sum == sha {
			return false, nil
		}
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return false, err
	}
	in, err := os.Open(src)
	if err != nil {
		return false, err
	}
	defer in.Close()
	write := atomicfile.Write
	if bulk {
		write = atomicfile.WriteUnsynced
	}
	return true, write(dst, 0o644, func(w io.Writer) error {
		h := sha256.New()
		n, err := io.Copy(io.MultiWriter(w, h), io.LimitReader(in, length+1))
		if err != nil {
			return err
		}
		if n != length || hex.EncodeToString(h.Sum(nil)) != sha {
			return fmt.Errorf("payload %s changed while it was being published; publish again", src)
		}
		return nil
	})
}

// readUpdate returns the published metadata of update id and its exact bytes,
// or ErrUnknownUpdate.
func (r *Repository) readUpdate(st *state, id string) (*catalog.Update, []byte, error) {
	tf, err := r.lookup(st, UpdatePath(id))
	if err != nil {
		return nil, nil, err
	}
	if tf == nil {
		return nil, nil, fmt.Errorf("%s: %w", id, ErrUnknownUpdate)
	}
	b, err := r.readTarget(tf)
	if err != nil {
		return nil, nil, err
	}
	u, err := catalog.ParseJSON(b)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", tf.Path, err)
	}
	return u, b, nil
}

// readTarget reads a small target file and checks it against its listing.
func (r *Repository) readTarget(tf *metadata.TargetFiles) ([]byte, error) {
	p := r.targetFilePath(tf.Path, hex.EncodeToString(tf.Hashes["sha256"]))
	b, err := capread.File(p, tf.Length)
	if err != nil {
		return nil, err
	}
	if err := tf.VerifyLengthHashes(b); err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return b, nil
}

// hashFile streams a file through SHA-256.
func hashFile(path string) (int64, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, "", err
	}
	if !fi.Mode().IsRegular() {
		return 0, "", fmt.Errorf("%s is not a regular file", path)
	}
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return 0, "", err
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}
