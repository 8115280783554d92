package install

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/klauspost/compress/zstd"

	"github.com/bulwarkhq/bulwark/internal/atomicfile"
	"github.com/bulwarkhq/bulwark/internal/catalog"
)

// Archive extracts .tar.zst payloads under the update's installer prefix
// (inside the request's root).
//
// Entries are refused, naming them, when they are absolute, contain "..",
// are links whose target leaves the prefix, would be written through a
// symlink, are devices, fifos or other special files, carry setuid/setgid
// bits (unless Options.AllowSetuid), repeat an earlier name, or exceed the
// file count or byte limits; the decoded stream is capped too, against
// ratio bombs hidden in headers. Ownership in the archive is ignored: files
// belong to the agent's user. Everything is extracted into a staging
// directory next to the prefix first and moved into place only when the
// whole archive was accepted, so a refused archive leaves nothing behind.
// Every file written is recorded (path, SHA-256, mode) in
// StateDir/archive/ID.json for Uninstall.
type Archive struct {
	opts Options
	log  *slog.Logger
}

var _ Handler = (*Archive)(nil)

const (
	archiveRecordFormat = 1
	stagingPrefix       = ".bulwark-staging-"
	maxNameLen          = 4096
	// headerAllowance is the decoded-stream budget per entry beyond its
	// content: its header, PAX records and padding.
	headerAllowance = 8 << 10
	zstdMaxWindow   = 64 << 20
)

// EntryError is an archive entry refused.
type EntryError struct {
	Payload string // payload file name
	Entry   string // the entry's name as in the archive
	Reason  string
}

func (e *EntryError) Error() string {
	return fmt.Sprintf("archive %s: entry %q: %s", e.Payload, e.Entry, e.Reason)
}

func (e *EntryError) Unwrap() error { return ErrUnsafeEntry }

type archiveRecord struct {
	Format   int               `json:"format"`
	Update   string            `json:"update"`
	Prefix   string            `json:"prefix"` // the full path: root + installer prefix
	State    string            `json:"state"`  // "installing" until every file is in place, then "installed"
	Payloads map[string]string `json:"payloads"`
	Files    []fileRecord      `json:"files"`
	Dirs     []string          `json:"dirs"` // directories this install created, relative to Prefix
}

type fileRecord struct {
	Path   string `json:"path"` // relative to Prefix, slash-separated
	Type   string `json:"type"` // "file", "dir" or "symlink"
	Mode   uint32 `json:"mode,omitempty"`
	SHA256 string `json:"sha256,omitempty"`
	Target string `json:"target,omitempty"` // symlink target
}

// Install extracts every payload, in order, under Root+Installer.Prefix.
// Installing the same payloads again while the files are unchanged does
// nothing.
func (a *Archive) Install(ctx context.Context, req Request) (Result, error) {
	if err := req.check(true); err != nil {
		return Result{}, err
	}
	id := req.Update.ID
	if err := checkID(id); err != nil {
		return Result{}, err
	}
	dest, err := prefixDir(req)
	if err != nil {
		return Result{}, err
	}
	log := a.log.With("update", id, "prefix", dest)
	digests := map[string]string{}
	for _, p := range req.Update.Payloads {
		if !strings.HasSuffix(p.File, ".tar.zst") {
			return Result{}, fmt.Errorf("update %s: payload %q: installer type archive takes only .tar.zst files: %w", id, p.File, ErrBadRequest)
		}
		d, err := fileSHA256(req.Payloads[p.File])
		if err != nil {
			return Result{}, fmt.Errorf("update %s: payload %s: %w", id, p.File, err)
		}
		digests[p.File] = d
	}
	old, err := readArchiveRecord(req.StateDir, id)
	if err != nil {
		return Result{}, err
	}
	reboot := req.Update.Reboot == catalog.RebootRequired
	if old != nil && old.State == "installed" && old.Prefix == dest && maps2equal(old.Payloads, digests) {
		if changed := verifyFiles(dest, old.Files, true); len(changed) == 0 {
			return Result{RebootRequired: false, Output: "already installed; nothing changed"}, nil
		}
	}

	parent, base := filepath.Dir(dest), filepath.Base(dest)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return Result{}, fmt.Errorf("update %s: create %s: %w", id, parent, err)
	}
	removeStaleStaging(parent, base, log)
	staging, err := os.MkdirTemp(parent, stagingPrefix+base+"-")
	if err != nil {
		return Result{}, fmt.Errorf("update %s: staging dir: %w", id, err)
	}
	defer os.RemoveAll(staging)

	x := &extractor{maxFiles: a.opts.MaxFiles, maxBytes: a.opts.MaxBytes, allowSetuid: a.opts.AllowSetuid, seen: map[string]*fileRecord{}}
	for _, p := range req.Update.Payloads {
		if err := ctx.Err(); err != nil {
			return Result{}, err
		}
		if err := x.extractFile(req.Payloads[p.File], p.File, staging); err != nil {
			return Result{}, &Failure{Update: id, Step: "extract " + p.File, Reason: err.Error(), Err: err}
		}
	}
	rec := archiveRecord{Format: archiveRecordFormat, Update: id, Prefix: dest, State: "installing", Payloads: digests, Files: x.records()}
	// Record the files and the directories about to be created before
	// moving anything, so a crash mid-move still lets Uninstall find
	// them, and a reinstall finishes the job.
	beforeMove := func(willCreate []string) error {
		dirs := slices.Clone(willCreate)
		if old != nil {
			dirs = append(dirs, old.Dirs...) // still ours
		}
		rec.Dirs = uniqueSorted(dirs)
		return writeRecord(req.StateDir, "archive", rec.Update, rec)
	}
	if err := moveIntoPlace(parent, filepath.Base(staging), base, rec.Files, beforeMove); err != nil {
		if errors.Is(err, errRecord) {
			return Result{}, err
		}
		return Result{}, &Failure{Update: id, Step: "move into place", Reason: err.Error(), Err: err}
	}
	if err := atomicfile.SyncFS(dest); err != nil {
		return Result{}, fmt.Errorf("update %s: sync: %w", id, err)
	}
	rec.State = "installed"
	if err := writeRecord(req.StateDir, "archive", rec.Update, rec); err != nil {
		return Result{}, err
	}
	if old != nil {
		// Files of the previous install that this archive no longer has.
		keep := map[string]bool{}
		for _, f := range rec.Files {
			keep[f.Path] = true
		}
		var gone []fileRecord
		for _, f := range old.Files {
			if !keep[f.Path] {
				gone = append(gone, f)
			}
		}
		removeFiles(dest, gone, nil, log)
	}
	log.Info("extracted", "files", len(rec.Files), "bytes", x.bytes)
	return Result{RebootRequired: reboot, Output: fmt.Sprintf("extracted %d entries (%d bytes) under %s", len(rec.Files), x.bytes, dest)}, nil
}

// Uninstall removes exactly the files the install recorded, then the
// directories it created when they are empty. Files changed since the
// install are not removed (ErrChanged) unless req.Force. An update with no
// install record has nothing to remove.
func (a *Archive) Uninstall(ctx context.Context, req Request) (Result, error) {
	if err := req.checkUninstall(); err != nil {
		return Result{}, err
	}
	id := req.Update.ID
	rec, err := readArchiveRecord(req.StateDir, id)
	if err != nil {
		return Result{}, err
	}
	if rec == nil {
		return Result{Output: "nothing to remove: no install record"}, nil
	}
	dest := rec.Prefix
	if changed := verifyFiles(dest, rec.Files, false); len(changed) > 0 && !req.Force {
		return Result{}, &Failure{Update: id, Step: "uninstall", Err: ErrChanged,
			Reason: fmt.Sprintf("changed since install under %s: %s (force to remove anyway)", dest, strings.Join(changed, ", "))}
	}
	n := removeFiles(dest, rec.Files, rec.Dirs, a.log.With("update", id))
	if err := os.Remove(stateFile(req.StateDir, "archive", id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return Result{}, fmt.Errorf("update %s: remove install record: %w", id, err)
	}
	atomicfile.SyncDir(filepath.Join(req.StateDir, "archive"))
	return Result{RebootRequired: req.Update.Reboot == catalog.RebootRequired, Output: fmt.Sprintf("removed %d entries under %s", n, dest)}, nil
}

// prefixDir returns Root+Installer.Prefix after checking the prefix.
func prefixDir(req Request) (string, error) {
	p := req.Update.Installer.Prefix
	if p == "" || !path.IsAbs(p) || path.Clean(p) != p || p == "/" || strings.ContainsRune(p, 0) {
		return "", fmt.Errorf("update %s: installer prefix %q: want an absolute, clean directory other than /, such as /opt/vendor: %w", req.Update.ID, p, ErrBadRequest)
	}
	return filepath.Join(req.Root, filepath.FromSlash(p)), nil
}

// extractor carries the limits and what was extracted so far across the
// payloads of one update.
type extractor struct {
	maxFiles    int
	maxBytes    int64
	allowSetuid bool

	files int
	bytes int64
	seen  map[string]*fileRecord // archive path → entry
	order []string
}

func (x *extractor) records() []fileRecord {
	out := make([]fileRecord, 0, len(x.order))
	for _, name := range x.order {
		out = append(out, *x.seen[name])
	}
	return out
}

func (x *extractor) extractFile(src, payload, staging string) error {
	f, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("open payload: %w", err)
	}
	defer f.Close()
	return x.extractZstd(f, payload, staging)
}

// extractZstd decodes a zstd stream, with a bounded window, and extracts
// the tar inside it into staging.
func (x *extractor) extractZstd(r io.Reader, payload, staging string) error {
	zr, err := zstd.NewReader(r,
		zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderLowmem(true),
		zstd.WithDecoderMaxWindow(zstdMaxWindow),
		zstd.WithDecoderMaxMemory(zstdMaxWindow))
	if err != nil {
		return fmt.Errorf("zstd: %w", err)
	}
	defer zr.Close()
	return x.extract(zstdErrors{zr}, payload, staging)
}

// zstdErrors marks decoding errors as zstd's.
type zstdErrors struct{ r io.Reader }

func (z zstdErrors) Read(p []byte) (int, error) {
	n, err := z.r.Read(p)
	if err != nil && err != io.EOF {
		err = fmt.Errorf("zstd: %w", err)
	}
	return n, err
}

// fileMode converts Unix permission bits (0o4755) to an fs.FileMode, which
// keeps setuid, setgid and sticky in bits of its own.
func fileMode(m uint32) fs.FileMode {
	out := fs.FileMode(m & 0o777)
	if m&0o4000 != 0 {
		out |= fs.ModeSetuid
	}
	if m&0o2000 != 0 {
		out |= fs.ModeSetgid
	}
	if m&0o1000 != 0 {
		out |= fs.ModeSticky
	}
	return out
}

// errDecodedCap is returned by cappedReader past its limit.
var errDecodedCap = errors.New("decoded size limit reached")

type cappedReader struct {
	r    io.Reader
	left int64
}

func (c *cappedReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, errDecodedCap
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	return n, err
}

// extract reads one tar stream into staging.
func (x *extractor) extract(r io.Reader, payload, staging string) error {
	root, err := os.OpenRoot(staging)
	if err != nil {
		return err
	}
	defer root.Close()
	budget := x.maxBytes + int64(x.maxFiles)*headerAllowance + 1<<20
	cr := &cappedReader{r: r, left: budget}
	tr := tar.NewReader(cr)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if errors.Is(err, errDecodedCap) {
				return &EntryError{Payload: payload, Entry: "(after " + x.last() + ")", Reason: fmt.Sprintf("decompression bomb: the stream decodes to more than %d bytes (limits: %d files, %d bytes)", budget, x.maxFiles, x.maxBytes)}
			}
			return fmt.Errorf("archive %s: read tar after %s: %w", payload, x.last(), err)
		}
		if err := x.entry(root, tr, hdr, payload); err != nil {
			if errors.Is(err, errDecodedCap) {
				return &EntryError{Payload: payload, Entry: hdr.Name, Reason: fmt.Sprintf("decompression bomb: the stream decodes to more than %d bytes", budget)}
			}
			return err
		}
	}
	// Directories get their modes last, so a read-only one did not stop
	// its own entries.
	for _, name := range x.order {
		e := x.seen[name]
		if e.Type == "dir" {
			if err := root.Chmod(name, fileMode(e.Mode)); err != nil {
				return fmt.Errorf("archive %s: chmod %s: %w", payload, name, err)
			}
		}
	}
	return nil
}

func (x *extractor) last() string {
	if len(x.order) == 0 {
		return "the start"
	}
	return fmt.Sprintf("%q", x.order[len(x.order)-1])
}

// entry checks and writes one tar entry.
func (x *extractor) entry(root *os.Root, tr *tar.Reader, hdr *tar.Header, payload string) error {
	refuse := func(format string, args ...any) error {
		return &EntryError{Payload: payload, Entry: hdr.Name, Reason: fmt.Sprintf(format, args...)}
	}
	x.files++
	if x.files > x.maxFiles {
		return refuse("too many entries: more than %d", x.maxFiles)
	}
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		return nil // PAX global header: no file
	}
	name, err := entryName(hdr.Name)
	if err != nil {
		return refuse("%v", err)
	}
	if name == "." {
		if hdr.Typeflag == tar.TypeDir {
			return nil // the prefix itself
		}
		return refuse("names the prefix itself")
	}
	if _, dup := x.seen[name]; dup {
		return refuse("repeats an earlier entry (a later entry must not replace an earlier one)")
	}
	// No entry may be written through a symlink or under a file.
	for d := path.Dir(name); d != "."; d = path.Dir(d) {
		if e, ok := x.seen[d]; ok && e.Type != "dir" {
			return refuse("would be written through %s %q", e.Type, d)
		}
	}
	mode := hdr.Mode & 0o7777
	if mode&0o6000 != 0 && !x.allowSetuid {
		return refuse("setuid or setgid bit (mode %#o); not allowed for this installer", mode)
	}
	rec := &fileRecord{Path: name}
	switch hdr.Typeflag {
	case tar.TypeDir:
		rec.Type, rec.Mode = "dir", uint32(mode|0o700)
		if err := x.mkdirs(root, name, rec.Mode); err != nil {
			return refuse("%v", err)
		}
	case tar.TypeReg: // the reader reports old-style TypeRegA entries as TypeReg
		if hdr.Size < 0 || hdr.Size > x.maxBytes-x.bytes {
			return refuse("size bomb: %d bytes would pass the limit of %d bytes for the archive", hdr.Size, x.maxBytes)
		}
		if err := x.mkdirs(root, path.Dir(name), 0o755); err != nil {
			return refuse("%v", err)
		}
		f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return refuse("create: %v", err)
		}
		h := sha256.New()
		n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(tr, hdr.Size))
		if err == nil && n != hdr.Size {
			err = io.ErrUnexpectedEOF
		}
		if err == nil {
			err = f.Chmod(fileMode(uint32(mode &^ 0o1000)))
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			if errors.Is(err, errDecodedCap) {
				return err
			}
			return refuse("write: %v", err)
		}
		x.bytes += hdr.Size
		rec.Type, rec.Mode, rec.SHA256 = "file", uint32(mode&^0o1000), hex.EncodeToString(h.Sum(nil))
	case tar.TypeSymlink:
		if err := checkSymlink(name, hdr.Linkname); err != nil {
			return refuse("%v", err)
		}
		if err := x.mkdirs(root, path.Dir(name), 0o755); err != nil {
			return refuse("%v", err)
		}
		if err := root.Symlink(hdr.Linkname, name); err != nil {
			return refuse("symlink: %v", err)
		}
		rec.Type, rec.Target = "symlink", hdr.Linkname
	case tar.TypeLink:
		target, err := entryName(hdr.Linkname)
		if err != nil {
			return refuse("hardlink target %q escapes the prefix: %v", hdr.Linkname, err)
		}
		t, ok := x.seen[target]
		if !ok || t.Type != "file" {
			return refuse("hardlink target %q is not a regular file earlier in the archive", hdr.Linkname)
		}
		if err := x.mkdirs(root, path.Dir(name), 0o755); err != nil {
			return refuse("%v", err)
		}
		if err := root.Link(target, name); err != nil {
			return refuse("hardlink: %v", err)
		}
		rec.Type, rec.Mode, rec.SHA256 = "file", t.Mode, t.SHA256
	case tar.TypeChar, tar.TypeBlock:
		return refuse("device file; archives may hold only files, directories and links")
	case tar.TypeFifo:
		return refuse("fifo; archives may hold only files, directories and links")
	default:
		return refuse("entry type %q not supported (valid: file, directory, symlink, hardlink)", string(hdr.Typeflag))
	}
	x.seen[name] = rec
	x.order = append(x.order, name)
	return nil
}

// mkdirs creates dir and its missing parents in root, recording the ones it
// creates as entries, and refuses to pass through anything but a directory.
func (x *extractor) mkdirs(root *os.Root, dir string, mode uint32) error {
	if dir == "." {
		return nil
	}
	if e, ok := x.seen[dir]; ok {
		if e.Type != "dir" {
			return fmt.Errorf("%q is a %s, not a directory", dir, e.Type)
		}
		return nil
	}
	if err := x.mkdirs(root, path.Dir(dir), 0o755); err != nil {
		return err
	}
	if err := root.Mkdir(dir, 0o700); err != nil {
		return fmt.Errorf("mkdir %s: %w", dir, err)
	}
	x.seen[dir] = &fileRecord{Path: dir, Type: "dir", Mode: mode}
	x.order = append(x.order, dir)
	return nil
}

// entryName checks an archive member name and returns it cleaned and
// relative ("./a//b/" → "a/b"); "." is the archive's top directory.
func entryName(name string) (string, error) {
	switch {
	case name == "":
		return "", errors.New("empty name")
	case len(name) > maxNameLen:
		return "", fmt.Errorf("name longer than %d bytes", maxNameLen)
	case strings.ContainsRune(name, 0):
		return "", errors.New("NUL in name")
	case strings.HasPrefix(name, "/"):
		return "", errors.New("absolute path; entries must be relative to the prefix")
	}
	for _, part := range strings.Split(name, "/") {
		if part == ".." {
			return "", errors.New("'..' in path; entries must stay under the prefix")
		}
	}
	return path.Clean(name), nil
}

// checkSymlink accepts a symlink at name whose target is relative and
// resolves inside the prefix. The target may climb with leading ".." no
// higher than name's directory, then only descend: a ".." after a
// component could climb back out through another symlink (d → ".", then
// "d/.." is the prefix's parent), so it is refused whatever it looks like
// once cleaned.
func checkSymlink(name, target string) error {
	switch {
	case target == "":
		return errors.New("symlink with an empty target")
	case len(target) > maxNameLen:
		return fmt.Errorf("symlink target longer than %d bytes", maxNameLen)
	case strings.ContainsRune(target, 0):
		return errors.New("NUL in symlink target")
	case strings.HasPrefix(target, "/"):
		return fmt.Errorf("symlink to absolute path %q; links must be relative and stay under the prefix", target)
	}
	depth := 0
	if d := path.Dir(name); d != "." {
		depth = strings.Count(d, "/") + 1
	}
	up, descended := 0, false
	for _, part := range strings.Split(target, "/") {
		switch part {
		case "", ".":
		case "..":
			if descended {
				return fmt.Errorf("symlink target %q has '..' after a name; it could escape the prefix through another link", target)
			}
			up++
		default:
			descended = true
		}
	}
	if up > depth {
		return fmt.Errorf("symlink target %q escapes the prefix", target)
	}
	return nil
}

// errRecord marks a failure to write the install record.
var errRecord = errors.New("write install record")

// moveIntoPlace moves the staged entries (in staging, a sibling of base in
// parent) into parent/base, refusing to pass through a symlink or replace a
// directory with a file. It checks every entry before it moves any, so a
// refusal leaves the prefix as it was; then it calls beforeMove with the
// directories it is about to create (relative to base), and moves.
func moveIntoPlace(parent, staging, base string, files []fileRecord, beforeMove func(willCreate []string) error) error {
	root, err := os.OpenRoot(parent)
	if err != nil {
		return err
	}
	defer root.Close()
	sorted := slices.Clone(files)
	slices.SortFunc(sorted, func(a, b fileRecord) int { return strings.Compare(a.Path, b.Path) })
	full := func(rel string) string {
		if rel == "." {
			return base
		}
		return base + "/" + rel
	}
	var willCreate []string
	// check reports what is in the way of placing f (nil: nothing).
	check := func(f fileRecord) error {
		for d := path.Dir(f.Path); ; d = path.Dir(d) {
			st, err := root.Lstat(full(d))
			if err == nil && !st.IsDir() {
				return fmt.Errorf("%s is a %s, not a directory; refusing to write %s through it", filepath.Join(parent, full(d)), typeName(st.Mode()), f.Path)
			}
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			if d == "." {
				break
			}
		}
		st, err := root.Lstat(full(f.Path))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if f.Type == "dir" {
				willCreate = append(willCreate, f.Path)
			}
			return nil
		case err != nil:
			return err
		case f.Type == "dir" && !st.IsDir():
			return fmt.Errorf("%s is a %s; refusing to replace it with a directory", filepath.Join(parent, full(f.Path)), typeName(st.Mode()))
		case f.Type != "dir" && st.IsDir():
			return fmt.Errorf("%s is a directory; refusing to replace it with a %s", filepath.Join(parent, full(f.Path)), f.Type)
		}
		return nil
	}
	if err := check(fileRecord{Path: ".", Type: "dir"}); err != nil {
		return err
	}
	for _, f := range sorted {
		if err := check(f); err != nil {
			return err
		}
	}
	if err := beforeMove(willCreate); err != nil {
		return fmt.Errorf("%w: %w", errRecord, err)
	}
	ensureDir := func(rel string, mode fs.FileMode) error {
		if _, err := root.Lstat(full(rel)); err == nil {
			return nil
		}
		if err := root.Mkdir(full(rel), mode); err != nil {
			return err
		}
		return root.Chmod(full(rel), mode) // whatever the umask
	}
	if err := ensureDir(".", 0o755); err != nil {
		return err
	}
	for _, f := range sorted {
		// Checked above; checked again so that a symlink placed since is
		// not followed.
		if err := check(f); err != nil {
			return err
		}
		if f.Type == "dir" {
			if err := ensureDir(f.Path, fileMode(f.Mode)); err != nil {
				return err
			}
			continue
		}
		if err := root.Rename(staging+"/"+f.Path, full(f.Path)); err != nil {
			return err
		}
	}
	return nil
}

func typeName(m fs.FileMode) string {
	switch {
	case m&fs.ModeSymlink != 0:
		return "symlink"
	case m.IsRegular():
		return "file"
	case m.IsDir():
		return "directory"
	}
	return "special file"
}

// verifyFiles returns the recorded entries under dest that differ from the
// record, and the missing ones when missingIsChange (for uninstall a
// missing file is one less to remove, not a change to protect).
func verifyFiles(dest string, files []fileRecord, missingIsChange bool) []string {
	root, err := os.OpenRoot(dest)
	if err != nil {
		if !missingIsChange && errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return []string{dest}
	}
	defer root.Close()
	var changed []string
	for _, f := range files {
		if _, err := root.Lstat(f.Path); errors.Is(err, fs.ErrNotExist) && !missingIsChange {
			continue
		}
		if !sameAsRecord(root, f) {
			changed = append(changed, f.Path)
		}
	}
	return changed
}

func sameAsRecord(root *os.Root, f fileRecord) bool {
	st, err := root.Lstat(f.Path)
	if err != nil {
		return false
	}
	switch f.Type {
	case "dir":
		return st.IsDir()
	case "symlink":
		t, err := root.Readlink(f.Path)
		return err == nil && st.Mode().Type() == fs.ModeSymlink && t == f.Target
	case "file":
		if !st.Mode().IsRegular() || uint32(st.Mode().Perm()|st.Mode()&(fs.ModeSetuid|fs.ModeSetgid)) != modeBits(f.Mode) {
			return false
		}
		file, err := root.Open(f.Path)
		if err != nil {
			return false
		}
		defer file.Close()
		h := sha256.New()
		if _, err := io.Copy(h, file); err != nil {
			return false
		}
		return hex.EncodeToString(h.Sum(nil)) == f.SHA256
	}
	return false
}

// modeBits converts a recorded Unix mode (0o4755) to fs.FileMode bits as
// Lstat reports them.
func modeBits(m uint32) uint32 {
	out := m & 0o777
	if m&0o4000 != 0 {
		out |= uint32(fs.ModeSetuid)
	}
	if m&0o2000 != 0 {
		out |= uint32(fs.ModeSetgid)
	}
	return out
}

// removeFiles removes the recorded files and symlinks under dest, then the
// given directories deepest first when they are empty. It returns how many
// entries it removed.
func removeFiles(dest string, files []fileRecord, dirs []string, log *slog.Logger) int {
	root, err := os.OpenRoot(dest)
	if err != nil {
		log.Warn("open prefix", "err", err)
		return 0
	}
	defer root.Close()
	n := 0
	for _, f := range files {
		if f.Type == "dir" {
			continue
		}
		if err := root.Remove(f.Path); err == nil {
			n++
		} else if !errors.Is(err, fs.ErrNotExist) {
			log.Warn("remove", "path", f.Path, "err", err)
		}
	}
	ds := slices.Clone(dirs)
	slices.SortFunc(ds, func(a, b string) int { return strings.Count(b, "/") - strings.Count(a, "/") })
	removedTop := false
	for _, d := range ds {
		if d == "." {
			removedTop = true
			continue
		}
		if err := root.Remove(d); err == nil {
			n++
		}
	}
	root.Close()
	if removedTop {
		if err := os.Remove(dest); err == nil {
			n++
		}
	}
	return n
}

func removeStaleStaging(parent, base string, log *slog.Logger) {
	ents, err := os.ReadDir(parent)
	if err != nil {
		return
	}
	for _, e := range ents {
		if e.IsDir() && strings.HasPrefix(e.Name(), stagingPrefix+base+"-") {
			log.Info("removing a staging dir an interrupted install left", "dir", e.Name())
			os.RemoveAll(filepath.Join(parent, e.Name()))
		}
	}
}

func fileSHA256(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func maps2equal(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func uniqueSorted(s []string) []string {
	slices.Sort(s)
	return slices.Compact(s)
}

// readArchiveRecord returns nil, nil when there is no record.
func readArchiveRecord(stateDir, id string) (*archiveRecord, error) {
	var rec archiveRecord
	if ok, err := readRecord(stateDir, "archive", id, 256<<20, &rec); !ok || err != nil {
		return nil, err
	}
	p := stateFile(stateDir, "archive", id)
	if rec.Format != archiveRecordFormat {
		return nil, fmt.Errorf("install record %s: format %d, this agent reads format %d (upgrade the agent)", p, rec.Format, archiveRecordFormat)
	}
	if !filepath.IsAbs(rec.Prefix) {
		return nil, fmt.Errorf("install record %s: prefix %q is not absolute", p, rec.Prefix)
	}
	for _, f := range rec.Files {
		if n, err := entryName(f.Path); err != nil || n != f.Path || n == "." {
			return nil, fmt.Errorf("install record %s: path %q: want a clean relative path", p, f.Path)
		}
	}
	return &rec, nil
}
