package lockdown

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
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
	"time"

	"github.com/bulwarkhq/bulwark/internal/atomicfile"
)

// journalFormat is the on-disk format version of the state directory.
const journalFormat = 1

// Run statuses.
const (
	StatusApplying   = "applying"    // changes are being made; a crash leaves this
	StatusApplied    = "applied"     // every change made and validated
	StatusRolledBack = "rolled-back" // validation failed and the changes were undone
	StatusUndone     = "undone"      // `lockdown undo` restored the prior state
)

// RunRecord describes one apply run in the journal.
type RunRecord struct {
	Format   int       `json:"format"`
	ID       string    `json:"id"`
	Root     string    `json:"root"`
	Profile  string    `json:"profile"`
	Rules    []string  `json:"rules"`
	Status   string    `json:"status"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished,omitzero"`
	// Units are systemd units stopped by the run on the running system, to
	// start again on undo.
	Units []string `json:"units,omitempty"`
	// Sysctls are the values in force before the run on the running
	// system, written back by undo.
	Sysctls map[string]string `json:"sysctls,omitempty"`
	// DirTimes are the modification times (Unix nanoseconds) of the
	// directories whose entries the run changed, taken before the first
	// change in each; undo puts them back last.
	DirTimes map[string]int64 `json:"dir_times,omitempty"`
	// InRoot is set when the journal lives inside the root it changed
	// (DefaultStateDir of a root other than /): undo then works on the
	// directory holding the journal, wherever the image is mounted now.
	InRoot bool `json:"in_root,omitempty"`
	// Packages are what the run's package rules asked apt-get to install;
	// Installed what it did install (dependencies included), recorded
	// once apt-get returned. Undo purges Installed.
	Packages  []string `json:"packages,omitempty"`
	Installed []string `json:"installed,omitempty"`
}

// stateSubdir is where a root keeps its own journal.
const stateSubdir = "var/lib/bulwark/lockdown"

// DefaultStateDir is the journal of runs on root: /var/lib/bulwark/lockdown
// of that root, so that an image carries its own undo.
func DefaultStateDir(root string) string {
	return filepath.Join(root, filepath.FromSlash(stateSubdir))
}

// rootOfStateDir returns the root whose DefaultStateDir dir is, or "".
func rootOfStateDir(dir string) string {
	dir = filepath.Clean(dir)
	suffix := string(filepath.Separator) + filepath.FromSlash(stateSubdir)
	if !strings.HasSuffix(dir, suffix) {
		return ""
	}
	if r := strings.TrimSuffix(dir, suffix); r != "" {
		return r
	}
	return "/"
}

// Entry is one path a run changed, written before the change is made.
type Entry struct {
	Seq    int    `json:"seq"`
	Path   string `json:"path"`
	Before State  `json:"before"`
	After  State  `json:"after"`
}

// Journal is the state directory holding one directory per run:
// runs/<id>/run.json, entries/<seq>.json and blobs/<sha256> with the exact
// prior bytes of every file changed. Directories are 0700 and files 0600,
// since prior bytes may be those of /etc/shadow.
type Journal struct {
	dir string
}

// OpenJournal opens (creating) the state directory. A directory written by a
// newer format is refused.
func OpenJournal(dir string) (*Journal, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("open journal: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "runs"), 0o700); err != nil {
		return nil, fmt.Errorf("open journal %s: %w", dir, err)
	}
	vf := filepath.Join(dir, "FORMAT")
	b, err := os.ReadFile(vf)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := atomicfile.WriteFile(vf, fmt.Appendf(nil, "%d\n", journalFormat), 0o600); err != nil {
			return nil, fmt.Errorf("open journal: %w", err)
		}
	case err != nil:
		return nil, fmt.Errorf("open journal: %w", err)
	case strings.TrimSpace(string(b)) != fmt.Sprint(journalFormat):
		return nil, fmt.Errorf("open journal %s: format %q is not %d; use the bulwark version that wrote it to undo its runs, or move the directory away", dir, strings.TrimSpace(string(b)), journalFormat)
	}
	return &Journal{dir: dir}, nil
}

func (j *Journal) runDir(id string) string { return filepath.Join(j.dir, "runs", id) }

// ErrBusy is returned when another apply or undo holds the journal.
var ErrBusy = errors.New("another lockdown apply or undo is running")

// Lock takes the journal's exclusive lock, so that two applies or undos
// never interleave. The lock goes with the process, also on SIGKILL.
func (j *Journal) Lock() (unlock func(), err error) {
	f, err := os.OpenFile(filepath.Join(j.dir, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock journal: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w (state directory %s)", ErrBusy, j.dir)
		}
		return nil, fmt.Errorf("lock journal: %w", err)
	}
	return func() { f.Close() }, nil
}

// validRunID accepts the ids this package makes.
func validRunID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range id {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-') {
			return false
		}
	}
	return true
}

// Begin records a new run and returns its writer.
func (j *Journal) Begin(root, profile string, rules []string, now time.Time) (*RunWriter, error) {
	var rnd [3]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, err
	}
	id := now.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(rnd[:])
	dir := j.runDir(id)
	for _, d := range []string{dir, filepath.Join(dir, "entries"), filepath.Join(dir, "blobs")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("begin run: %w", err)
		}
	}
	w := &RunWriter{dir: dir, rec: RunRecord{Format: journalFormat, ID: id, Root: root, Profile: profile, Rules: rules, Status: StatusApplying, Started: now.UTC()}}
	if r := rootOfStateDir(j.dir); r != "" && r != "/" && filepath.Clean(root) == r {
		w.rec.InRoot = true
	}
	if err := w.save(); err != nil {
		return nil, err
	}
	if err := atomicfile.SyncDir(filepath.Join(j.dir, "runs")); err != nil {
		return nil, err
	}
	return w, nil
}

// RunWriter appends entries to one run.
type RunWriter struct {
	dir string
	rec RunRecord
	seq int
}

// ID is the run's id.
func (w *RunWriter) ID() string { return w.rec.ID }

func (w *RunWriter) save() error {
	b, err := json.MarshalIndent(w.rec, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(filepath.Join(w.dir, "run.json"), append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("save run: %w", err)
	}
	return nil
}

// Record saves the prior bytes of a path and its entry, durably, before the
// caller changes it.
func (w *RunWriter) Record(path string, before, after State, hostPath string) error {
	if before.Kind == KindFile && before.SHA256 != after.SHA256 {
		data, err := readCapped(hostPath)
		if err != nil {
			return fmt.Errorf("journal %s: %w", path, err)
		}
		if hashBytes(data) != before.SHA256 {
			return fmt.Errorf("journal %s: the file changed while lockdown was planning; run apply again", path)
		}
		if err := atomicfile.WriteFile(filepath.Join(w.dir, "blobs", before.SHA256), data, 0o600); err != nil {
			return fmt.Errorf("journal %s: %w", path, err)
		}
	}
	w.seq++
	e := Entry{Seq: w.seq, Path: path, Before: before, After: after}
	b, err := json.MarshalIndent(e, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(filepath.Join(w.dir, "entries", fmt.Sprintf("%06d.json", w.seq)), append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("journal %s: %w", path, err)
	}
	return nil
}

// NoteDir records the modification time of a directory whose entries the
// run is about to change, once per directory, before the change.
func (w *RunWriter) NoteDir(dir string, hostPath string) error {
	if _, ok := w.rec.DirTimes[dir]; ok {
		return nil
	}
	st, err := diskState(hostPath, false)
	if err != nil || st.Kind != KindDir {
		return err
	}
	if w.rec.DirTimes == nil {
		w.rec.DirTimes = map[string]int64{}
	}
	w.rec.DirTimes[dir] = st.MTime
	return w.save()
}

// AddUnit records a unit stopped by the run.
func (w *RunWriter) AddUnit(unit string) error {
	w.rec.Units = append(w.rec.Units, unit)
	return w.save()
}

// SetSysctls records the kernel values in force before the run.
func (w *RunWriter) SetSysctls(m map[string]string) error {
	w.rec.Sysctls = m
	return w.save()
}

// SetPackages records the packages asked for and those installed.
func (w *RunWriter) SetPackages(asked, installed []string) error {
	w.rec.Packages, w.rec.Installed = asked, installed
	return w.save()
}

// Finish sets the run's final status.
func (w *RunWriter) Finish(status string, now time.Time) error {
	w.rec.Status, w.rec.Finished = status, now.UTC()
	return w.save()
}

// Runs lists the journal's runs, oldest first.
func (j *Journal) Runs() ([]RunRecord, error) {
	ents, err := os.ReadDir(filepath.Join(j.dir, "runs"))
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	var out []RunRecord
	for _, e := range ents {
		if !e.IsDir() || !validRunID(e.Name()) {
			continue
		}
		rec, err := j.Run(e.Name())
		if err != nil {
			return nil, err
		}
		out = append(out, rec)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].ID < out[b].ID })
	return out, nil
}

// ErrUnknownRun is returned for a run id the journal does not hold.
var ErrUnknownRun = errors.New("unknown run")

// Run reads one run's record.
func (j *Journal) Run(id string) (RunRecord, error) {
	var rec RunRecord
	if !validRunID(id) {
		return rec, fmt.Errorf("%w %q: a run id is like 20261122T031700Z-a1b2c3 (see `bulwark lockdown undo --list`)", ErrUnknownRun, id)
	}
	b, err := os.ReadFile(filepath.Join(j.runDir(id), "run.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return rec, fmt.Errorf("%w %q in %s (see `bulwark lockdown undo --list`)", ErrUnknownRun, id, j.dir)
	}
	if err != nil {
		return rec, fmt.Errorf("read run %s: %w", id, err)
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		return rec, fmt.Errorf("read run %s: %w", id, err)
	}
	if rec.Format != journalFormat {
		return rec, fmt.Errorf("run %s has journal format %d, not %d", id, rec.Format, journalFormat)
	}
	return rec, nil
}

// Entries reads one run's entries in the order they were made.
func (j *Journal) Entries(id string) ([]Entry, error) {
	dir := filepath.Join(j.runDir(id), "entries")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read entries of %s: %w", id, err)
	}
	var out []Entry
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".json") || strings.HasPrefix(e.Name(), ".tmp-") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("read entry: %w", err)
		}
		var en Entry
		if err := json.Unmarshal(b, &en); err != nil {
			return nil, fmt.Errorf("read entry %s/%s: %w", id, e.Name(), err)
		}
		out = append(out, en)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Seq < out[b].Seq })
	return out, nil
}

func (j *Journal) blob(id, sha string) ([]byte, error) {
	if !validSHA256(sha) {
		return nil, fmt.Errorf("saved bytes %q of run %s: not a SHA-256", sha, id)
	}
	f, err := os.Open(filepath.Join(j.runDir(id), "blobs", sha))
	if err != nil {
		return nil, fmt.Errorf("read saved bytes: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, err
	}
	if hashBytes(b) != sha {
		return nil, fmt.Errorf("saved bytes %s of run %s are corrupt", sha, id)
	}
	return b, nil
}

func (j *Journal) setStatus(id, status string, now time.Time) error {
	rec, err := j.Run(id)
	if err != nil {
		return err
	}
	w := &RunWriter{dir: j.runDir(id), rec: rec}
	return w.Finish(status, now)
}

// setState makes hostPath hold st (and data for a file), atomically for
// files. Parents must exist.
func setState(hostPath string, st State, data []byte) error {
	cur, err := diskState(hostPath, false)
	if err != nil {
		return err
	}
	switch st.Kind {
	case KindNone, "":
		if !cur.Exists() {
			return nil
		}
		if err := os.Remove(hostPath); err != nil {
			return err
		}
	case KindFile:
		if data == nil {
			// Metadata only: content is unchanged.
			if cur.Kind != KindFile {
				return fmt.Errorf("%s is %s, not a file", hostPath, cur)
			}
			if err := os.Chown(hostPath, st.UID, st.GID); err != nil {
				return err
			}
			if err := os.Chmod(hostPath, st.Mode); err != nil {
				return err
			}
			break
		}
		if cur.Kind == KindSymlink || cur.Kind == KindDir {
			return fmt.Errorf("%s is %s, not a file", hostPath, cur)
		}
		err := atomicfile.Write(hostPath, st.Mode.Perm(), func(w io.Writer) error {
			if f, ok := w.(*os.File); ok {
				if err := f.Chown(st.UID, st.GID); err != nil {
					return err
				}
				if err := f.Chmod(st.Mode); err != nil {
					return err
				}
			}
			_, err := w.Write(data)
			return err
		})
		if err != nil {
			return err
		}
	case KindSymlink:
		if cur.Exists() {
			if cur.Kind != KindSymlink {
				return fmt.Errorf("%s is %s, not a symlink", hostPath, cur)
			}
			if err := os.Remove(hostPath); err != nil {
				return err
			}
		}
		if err := os.Symlink(st.Target, hostPath); err != nil {
			return err
		}
		if err := os.Lchown(hostPath, st.UID, st.GID); err != nil {
			return err
		}
	case KindDir:
		if !cur.Exists() {
			if err := os.Mkdir(hostPath, st.Mode.Perm()); err != nil {
				return err
			}
		}
		if err := os.Chown(hostPath, st.UID, st.GID); err != nil {
			return err
		}
		if err := os.Chmod(hostPath, st.Mode); err != nil {
			return err
		}
	default:
		return fmt.Errorf("%s: cannot make a %s", hostPath, st.Kind)
	}
	return atomicfile.SyncDir(filepath.Dir(hostPath))
}

// ConflictError is an undo refused because files changed since the run.
type ConflictError struct {
	Run string
	// Paths maps each changed path to what changed it.
	Paths map[string]string
}

func (e *ConflictError) Error() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "refusing to undo run %s: files changed since it ran (use --force to restore them anyway):", e.Run)
	for _, p := range sortedKeys(e.Paths) {
		fmt.Fprintf(&sb, "\n  %s: %s", p, e.Paths[p])
	}
	return sb.String()
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// UndoResult says what undo restored.
type UndoResult struct {
	Run      string   `json:"run"`
	Restored []string `json:"restored"`
	// Kept maps each path undo --force overwrote although it had changed
	// since the run to the copy of its bytes kept in the journal.
	Kept map[string]string `json:"kept,omitempty"`
	// Unchanged paths were already in their prior state (a run that crashed
	// before changing them).
	Unchanged []string `json:"unchanged,omitempty"`
	Units     []string `json:"units,omitempty"`
	// Purged are the packages the run had installed, purged by undo.
	Purged []string `json:"purged,omitempty"`
}

// undo restores every entry of run id under root, newest first. Without
// force, a path that is neither in the run's after state nor its before
// state is a conflict and nothing is restored.
func (j *Journal) undo(id string, force bool, now time.Time) (*UndoResult, error) {
	rec, err := j.Run(id)
	if err != nil {
		return nil, err
	}
	if rec.Status == StatusUndone {
		return nil, fmt.Errorf("run %s was already undone", id)
	}
	entries, err := j.Entries(id)
	if err != nil {
		return nil, err
	}
	root := rec.Root
	if rec.InRoot {
		root = rootOfStateDir(j.dir)
	}
	// A journal inside an image is as trustworthy as the image: every path
	// it names must stay inside the root, through no symbolic link, before
	// anything is touched.
	for _, e := range entries {
		if err := checkJournalPath(root, e.Path); err != nil {
			return nil, fmt.Errorf("refusing to undo run %s: %w", id, err)
		}
		if e.Before.Kind == KindFile && !validSHA256(e.Before.SHA256) {
			return nil, fmt.Errorf("refusing to undo run %s: entry %d for %s has no valid content hash", id, e.Seq, e.Path)
		}
	}
	for _, d := range sortedKeys(rec.DirTimes) {
		if err := checkJournalPath(root, d); err != nil {
			return nil, fmt.Errorf("refusing to undo run %s: %w", id, err)
		}
	}
	res := &UndoResult{Run: id}
	conflicts := map[string]string{}
	current := map[string]State{}
	for _, e := range entries {
		cur, err := diskState(filepath.Join(root, e.Path), true)
		if err != nil {
			return nil, fmt.Errorf("undo %s: %w", e.Path, err)
		}
		current[e.Path] = cur
		if stateMatches(cur, e.After) || stateMatches(cur, e.Before) {
			continue
		}
		conflicts[e.Path] = "now " + cur.String() + ", the run left " + e.After.String() + j.laterRunNote(id, e.Path)
	}
	if len(conflicts) > 0 && !force {
		return nil, &ConflictError{Run: id, Paths: conflicts}
	}
	for i := len(entries) - 1; i >= 0; i-- {
		e := entries[i]
		hp := filepath.Join(root, e.Path)
		cur, err := diskState(hp, true)
		if err != nil {
			return nil, fmt.Errorf("undo %s: %w", e.Path, err)
		}
		if stateMatches(cur, e.Before) {
			res.Unchanged = append(res.Unchanged, e.Path)
			continue
		}
		var data []byte
		if e.Before.Kind == KindFile && (cur.Kind != KindFile || cur.SHA256 != e.Before.SHA256) {
			if data, err = j.blob(id, e.Before.SHA256); err != nil {
				return nil, fmt.Errorf("undo %s: %w", e.Path, err)
			}
		}
		if e.Before.Kind == KindDir && cur.Kind == KindDir {
			// fall through to chmod/chown
		} else if e.Before.Kind == KindNone && cur.Kind == KindDir {
			if err := os.Remove(hp); err != nil {
				return nil, fmt.Errorf("undo %s: remove directory lockdown created: %w", e.Path, err)
			}
			res.Restored = append(res.Restored, e.Path)
			continue
		}
		if _, changed := conflicts[e.Path]; changed && cur.Kind == KindFile {
			kept, err := j.keepCopy(id, e, hp)
			if err != nil {
				return nil, fmt.Errorf("undo %s: keep a copy of the changed file: %w", e.Path, err)
			}
			if res.Kept == nil {
				res.Kept = map[string]string{}
			}
			res.Kept[e.Path] = kept
		}
		if force && cur.Exists() && cur.Kind != e.Before.Kind {
			if err := os.Remove(hp); err != nil {
				return nil, fmt.Errorf("undo %s: %w", e.Path, err)
			}
		}
		if err := setState(hp, e.Before, data); err != nil {
			return nil, fmt.Errorf("undo %s: %w", e.Path, err)
		}
		if err := setMTime(hp, e.Before.MTime); err != nil {
			return nil, fmt.Errorf("undo %s: %w", e.Path, err)
		}
		res.Restored = append(res.Restored, e.Path)
	}
	// Directories last, deepest first: restoring their entries changed them.
	dirs := sortedKeys(rec.DirTimes)
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := setMTime(filepath.Join(root, dirs[i]), rec.DirTimes[dirs[i]]); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("undo %s: %w", dirs[i], err)
		}
	}
	// A crash in the middle of an atomic write leaves its temporary file
	// next to the path; remove those of this run's paths.
	for _, e := range entries {
		dir := filepath.Join(root, filepath.Dir(e.Path))
		stale, _ := filepath.Glob(filepath.Join(dir, ".tmp-"+filepath.Base(e.Path)+"-*"))
		for _, f := range stale {
			if err := os.Remove(f); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("undo: remove stale temporary file: %w", err)
			}
		}
	}
	res.Units = rec.Units
	if err := j.setStatus(id, StatusUndone, now); err != nil {
		return nil, err
	}
	return res, nil
}

// checkJournalPath refuses a journaled path that is not absolute and clean,
// names the root itself, or whose parent directories under root include a
// symbolic link (which could lead out of the root).
func checkJournalPath(root, p string) error {
	if !strings.HasPrefix(p, "/") || path.Clean(p) != p || p == "/" || strings.Contains(p, "\x00") {
		return fmt.Errorf("journaled path %q is not a clean absolute path inside the root", p)
	}
	dir := root
	parts := strings.Split(strings.TrimPrefix(path.Dir(p), "/"), "/")
	for _, part := range parts {
		if part == "" {
			continue
		}
		dir = filepath.Join(dir, part)
		fi, err := os.Lstat(dir)
		if errors.Is(err, fs.ErrNotExist) {
			return nil // undo creates nothing below a missing directory
		}
		if err != nil {
			return err
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			return fmt.Errorf("journaled path %s: %s is a symbolic link; undo does not follow links out of the root", p, dir)
		}
	}
	return nil
}

func validSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// setMTime sets a path's modification (and access) time; 0 leaves it.
func setMTime(hostPath string, mtime int64) error {
	if mtime == 0 {
		return nil
	}
	t := time.Unix(0, mtime)
	return os.Chtimes(hostPath, t, t)
}

// keepCopy saves the current bytes of a file undo --force is about to
// overwrite into the run's kept/ directory and returns the copy's path.
func (j *Journal) keepCopy(id string, e Entry, hostPath string) (string, error) {
	data, err := readCapped(hostPath)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(j.runDir(id), "kept")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	dst := filepath.Join(dir, fmt.Sprintf("%06d-%s", e.Seq, filepath.Base(e.Path)))
	if err := atomicfile.WriteFile(dst, data, 0o600); err != nil {
		return "", err
	}
	return dst, nil
}

// stateMatches compares a path's current state with a journaled one.
func stateMatches(cur, want State) bool {
	if want.Kind == KindDir {
		return cur.sameMeta(want)
	}
	return cur.same(want)
}

// laterRunNote names a later run that changed the same path, if any.
func (j *Journal) laterRunNote(id, p string) string {
	runs, err := j.Runs()
	if err != nil {
		return ""
	}
	for i := len(runs) - 1; i >= 0; i-- {
		r := runs[i]
		if r.ID <= id || r.Status == StatusUndone || r.Status == StatusRolledBack {
			continue
		}
		entries, err := j.Entries(r.ID)
		if err != nil {
			continue
		}
		for _, e := range entries {
			if e.Path == p {
				return fmt.Sprintf(" (changed by the later run %s: undo it first)", r.ID)
			}
		}
	}
	return " (changed outside bulwark)"
}
