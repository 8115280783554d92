package lockdown

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

// maxFileSize caps every file lockdown reads from a root: configuration files
// are small, and a root may be an untrusted image.
const maxFileSize = 8 << 20

// maxLinkHops bounds symlink resolution inside a root, like the kernel's
// ELOOP limit.
const maxLinkHops = 40

// Kind is what a path holds.
type Kind string

// The kinds of path a journal records.
const (
	KindNone    Kind = "none"
	KindFile    Kind = "file"
	KindDir     Kind = "dir"
	KindSymlink Kind = "symlink"
	KindOther   Kind = "other"
)

// State is what one path holds: kind, permission bits, owner and, for a
// symlink, its target. Content is carried separately.
type State struct {
	Kind   Kind        `json:"kind"`
	Mode   fs.FileMode `json:"mode,omitempty"`
	UID    int         `json:"uid"`
	GID    int         `json:"gid"`
	Target string      `json:"target,omitempty"`
	SHA256 string      `json:"sha256,omitempty"`
	Size   int64       `json:"size,omitempty"`
	// MTime is the modification time in Unix nanoseconds (files and
	// directories), which undo puts back. It is not compared by same.
	MTime int64 `json:"mtime,omitempty"`
}

// Exists reports whether anything is at the path.
func (s State) Exists() bool { return s.Kind != KindNone && s.Kind != "" }

// sameMeta reports whether two states agree on kind, mode, owner and target.
func (s State) sameMeta(o State) bool {
	return s.Kind == o.Kind && s.Mode == o.Mode && s.UID == o.UID && s.GID == o.GID && s.Target == o.Target
}

// same reports whether two states are identical, content included.
func (s State) same(o State) bool { return s.sameMeta(o) && s.SHA256 == o.SHA256 }

func (s State) String() string {
	switch s.Kind {
	case KindNone, "":
		return "absent"
	case KindSymlink:
		return "symlink -> " + s.Target
	default:
		return fmt.Sprintf("%s %04o %d:%d", s.Kind, uint32(s.Mode.Perm()|s.Mode&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)), s.UID, s.GID)
	}
}

func hashBytes(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// staged is the intended final state of one path in a Tree.
type staged struct {
	state State
	data  []byte // for KindFile
}

// Tree reads the files under a root directory and stages changes to them
// without touching the disk: Apply writes into a Tree, the planner diffs it
// against the disk, and Check reads through it, so a dry run knows exactly
// what a real run would write and whether the rules would then pass.
//
// Every path a rule names is absolute inside the root ("/etc/shadow"), and
// symlinks are resolved inside the root: an absolute link in an image points
// into the image, never at the machine running bulwark.
type Tree struct {
	root   string
	staged map[string]*staged
	// installs are the packages rules asked for (Install); the engine
	// installs them with the root's own apt before it writes any file.
	installs []string
}

// NewTree returns a Tree over the directory root ("/" for the running system).
func NewTree(root string) (*Tree, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("root %q: %w", root, err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("root %q: %w", root, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("root %q is not a directory: give the directory holding the system's /etc", root)
	}
	return &Tree{root: abs, staged: map[string]*staged{}}, nil
}

// Install asks for a Debian package to be installed by the root's own apt.
// Unlike file changes it is not staged: the engine installs the packages
// after the plan is confirmed and before the files are written.
func (t *Tree) Install(pkg string) {
	for _, p := range t.installs {
		if p == pkg {
			return
		}
	}
	t.installs = append(t.installs, pkg)
}

// Installs lists the packages asked for with Install, sorted.
func (t *Tree) Installs() []string {
	out := append([]string(nil), t.installs...)
	sort.Strings(out)
	return out
}

// Root is the directory the Tree is over.
func (t *Tree) Root() string { return t.root }

// Live reports whether the Tree is the running system's own root.
func (t *Tree) Live() bool { return t.root == "/" }

// host maps an in-root path to the path on this machine, without resolving
// symlinks.
func (t *Tree) host(p string) string { return filepath.Join(t.root, filepath.FromSlash(p)) }

// clean turns a rule's path into a canonical absolute in-root path.
func clean(p string) string { return path.Clean("/" + p) }

// Resolve follows symlinks in every component of p inside the root and
// returns the in-root path it names. When follow is false the last component
// is not followed.
func (t *Tree) Resolve(p string, follow bool) (string, error) {
	p = clean(p)
	hops := 0
	resolved := "/"
	rest := strings.Split(strings.TrimPrefix(p, "/"), "/")
	for len(rest) > 0 {
		name := rest[0]
		rest = rest[1:]
		if name == "" || name == "." {
			continue
		}
		if name == ".." {
			resolved = path.Dir(resolved)
			continue
		}
		next := path.Join(resolved, name)
		if len(rest) == 0 && !follow {
			resolved = next
			break
		}
		st, ok := t.staged[next]
		var target string
		isLink := false
		if ok {
			if st.state.Kind == KindSymlink {
				isLink, target = true, st.state.Target
			}
		} else if fi, err := os.Lstat(t.host(next)); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
			target, err = os.Readlink(t.host(next))
			if err != nil {
				return "", fmt.Errorf("resolve %s: %w", p, err)
			}
			isLink = true
		}
		if !isLink {
			resolved = next
			continue
		}
		hops++
		if hops > maxLinkHops {
			return "", fmt.Errorf("resolve %s: too many levels of symbolic links", p)
		}
		if !strings.HasPrefix(target, "/") {
			target = path.Join(resolved, target)
		} else {
			resolved = "/"
		}
		rest = append(strings.Split(strings.TrimPrefix(target, "/"), "/"), rest...)
	}
	return resolved, nil
}

// Lstat returns the state of p (its last component not followed), as staged
// or else as on disk. Content hashes are filled in for regular files.
func (t *Tree) Lstat(p string) (State, error) {
	rp, err := t.Resolve(p, false)
	if err != nil {
		return State{}, err
	}
	return t.lstatResolved(rp)
}

// Stat is Lstat after following a final symlink.
func (t *Tree) Stat(p string) (State, error) {
	rp, err := t.Resolve(p, true)
	if err != nil {
		return State{}, err
	}
	return t.lstatResolved(rp)
}

func (t *Tree) lstatResolved(rp string) (State, error) {
	if st, ok := t.staged[rp]; ok {
		return st.state, nil
	}
	return diskState(t.host(rp), true)
}

// diskState reads the state of a host path; withHash adds the content hash.
func diskState(hp string, withHash bool) (State, error) {
	fi, err := os.Lstat(hp)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return State{Kind: KindNone}, nil
	}
	if err != nil {
		return State{}, err
	}
	s := State{Mode: fi.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		s.UID, s.GID = int(sys.Uid), int(sys.Gid)
	}
	switch {
	case fi.Mode().IsRegular():
		s.Kind = KindFile
		s.Size = fi.Size()
		s.MTime = fi.ModTime().UnixNano()
		if withHash {
			b, err := readCapped(hp)
			if err != nil {
				return State{}, err
			}
			s.SHA256 = hashBytes(b)
		}
	case fi.IsDir():
		s.Kind = KindDir
		s.MTime = fi.ModTime().UnixNano()
	case fi.Mode()&fs.ModeSymlink != 0:
		s.Kind = KindSymlink
		s.Mode = 0
		if s.Target, err = os.Readlink(hp); err != nil {
			return State{}, err
		}
	default:
		s.Kind = KindOther
	}
	return s, nil
}

func readCapped(hp string) ([]byte, error) {
	f, err := os.Open(hp)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxFileSize {
		return nil, fmt.Errorf("%s is larger than %d bytes", hp, maxFileSize)
	}
	return b, nil
}

// ReadFile returns the content of p (following symlinks), as staged or on
// disk. A missing file is fs.ErrNotExist.
func (t *Tree) ReadFile(p string) ([]byte, error) {
	rp, err := t.Resolve(p, true)
	if err != nil {
		return nil, err
	}
	if st, ok := t.staged[rp]; ok {
		if st.state.Kind != KindFile {
			return nil, fmt.Errorf("read %s: %w", p, fs.ErrNotExist)
		}
		return bytes.Clone(st.data), nil
	}
	b, err := readCapped(t.host(rp))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	return b, nil
}

// Glob returns the in-root paths matching pattern (path.Match syntax in the
// last component only), sorted, including staged new files.
func (t *Tree) Glob(pattern string) ([]string, error) {
	pattern = clean(pattern)
	dir, base := path.Split(pattern)
	rdir, err := t.Resolve(dir, true)
	if err != nil {
		return nil, err
	}
	if _, err := path.Match(base, ""); err != nil {
		return nil, fmt.Errorf("glob %q: %w", pattern, err)
	}
	seen := map[string]bool{}
	entries, err := os.ReadDir(t.host(rdir))
	if err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) {
		return nil, fmt.Errorf("glob %q: %w", pattern, err)
	}
	for _, e := range entries {
		if ok, _ := path.Match(base, e.Name()); ok && !strings.HasPrefix(e.Name(), ".tmp-") {
			seen[path.Join(dir, e.Name())] = true
		}
	}
	for p, st := range t.staged {
		if path.Dir(p) == path.Clean(rdir) {
			if ok, _ := path.Match(base, path.Base(p)); ok {
				seen[path.Join(dir, path.Base(p))] = st.state.Exists()
			}
		}
	}
	var out []string
	for p, ok := range seen {
		if ok {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out, nil
}

// WriteFile stages p (following symlinks) to hold data with the given mode
// and owner.
func (t *Tree) WriteFile(p string, data []byte, mode fs.FileMode, uid, gid int) error {
	rp, err := t.Resolve(p, true)
	if err != nil {
		return err
	}
	t.staged[rp] = &staged{
		state: State{Kind: KindFile, Mode: mode, UID: uid, GID: gid, SHA256: hashBytes(data), Size: int64(len(data))},
		data:  bytes.Clone(data),
	}
	return nil
}

// EditFile stages new content for an existing file, keeping its mode and
// owner.
func (t *Tree) EditFile(p string, data []byte) error {
	st, err := t.Stat(p)
	if err != nil {
		return err
	}
	if st.Kind != KindFile {
		return fmt.Errorf("edit %s: not a regular file (%s)", p, st)
	}
	return t.WriteFile(p, data, st.Mode, st.UID, st.GID)
}

// SetMeta stages a new mode and owner for p (following symlinks), keeping
// its content.
func (t *Tree) SetMeta(p string, mode fs.FileMode, uid, gid int) error {
	rp, err := t.Resolve(p, true)
	if err != nil {
		return err
	}
	st, err := t.lstatResolved(rp)
	if err != nil {
		return err
	}
	if !st.Exists() || st.Kind == KindSymlink {
		return fmt.Errorf("set mode of %s: it is %s", p, st)
	}
	var data []byte
	if prev, ok := t.staged[rp]; ok {
		data = prev.data
	} else if st.Kind == KindFile {
		if data, err = readCapped(t.host(rp)); err != nil {
			return err
		}
	}
	st.Mode, st.UID, st.GID = mode, uid, gid
	t.staged[rp] = &staged{state: st, data: data}
	return nil
}

// Symlink stages p (its last component not followed) as a symlink to target.
func (t *Tree) Symlink(p, target string) error {
	rp, err := t.Resolve(p, false)
	if err != nil {
		return err
	}
	t.staged[rp] = &staged{state: State{Kind: KindSymlink, Target: target}}
	return nil
}

// Remove stages the removal of p (its last component not followed). Only
// symlinks may be removed: lockdown never deletes a file's content.
func (t *Tree) Remove(p string) error {
	rp, err := t.Resolve(p, false)
	if err != nil {
		return err
	}
	st, err := t.lstatResolved(rp)
	if err != nil {
		return err
	}
	if st.Kind != KindSymlink && st.Kind != KindNone {
		return fmt.Errorf("remove %s: only symlinks are removed, this is %s", p, st)
	}
	t.staged[rp] = &staged{state: State{Kind: KindNone}}
	return nil
}

// Change is one path a plan changes: its state now and after.
type Change struct {
	Path   string `json:"path"`
	Before State  `json:"before"`
	After  State  `json:"after"`
	// Diff is a unified diff of the content for text files, empty when only
	// the mode, owner or link changes.
	Diff string `json:"diff,omitempty"`

	data []byte
}

// Changes lists the staged paths that differ from the disk, sorted by path.
func (t *Tree) Changes() ([]Change, error) {
	paths := make([]string, 0, len(t.staged))
	for p := range t.staged {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	var out []Change
	for _, p := range paths {
		st := t.staged[p]
		before, err := diskState(t.host(p), true)
		if err != nil {
			return nil, err
		}
		after := st.state
		if before.Kind == KindFile && after.Kind == KindFile {
			after.Size = int64(len(st.data))
		}
		if before.same(after) {
			continue
		}
		c := Change{Path: p, Before: before, After: after, data: st.data}
		if after.Kind == KindFile && before.SHA256 != after.SHA256 {
			var old []byte
			if before.Kind == KindFile {
				if old, err = readCapped(t.host(p)); err != nil {
					return nil, err
				}
			}
			c.Diff = unifiedDiff(p, old, st.data, before.Exists())
		}
		out = append(out, c)
	}
	return out, nil
}
