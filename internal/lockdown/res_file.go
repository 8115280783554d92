package lockdown

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
)

// FileMode is the permission and ownership of files (a glob in the last
// path component is allowed). Mode is the most a file may allow: Check fails
// on any extra permission bit, and Apply removes the extra bits, keeping the
// rest. Owner and group are names looked up in the root's own /etc/passwd
// and /etc/group. A missing file is notapplicable.
type FileMode struct {
	Type  string `yaml:"type"`
	Path  string `yaml:"path"`
	Mode  string `yaml:"mode"`
	Owner string `yaml:"owner"`
	Group string `yaml:"group"`
	// AcceptGroups are other groups that also pass (Apply sets Group).
	AcceptGroups []string `yaml:"accept_groups"`

	mode fs.FileMode
}

// Validate checks the parameters.
func (r *FileMode) Validate() error {
	if !strings.HasPrefix(r.Path, "/") {
		return fmt.Errorf("path %q must be absolute inside the root, such as /etc/shadow", r.Path)
	}
	m, err := strconv.ParseUint(r.Mode, 8, 32)
	if err != nil || m > 0o7777 {
		return fmt.Errorf("mode %q must be octal permission bits such as 0640", r.Mode)
	}
	r.mode = fs.FileMode(m & 0o777)
	if m&0o7000 != 0 {
		return fmt.Errorf("mode %q: setuid, setgid and sticky bits are not managed here; use 0-0777", r.Mode)
	}
	return nil
}

// Describe says what the resource wants.
func (r *FileMode) Describe() string {
	s := fmt.Sprintf("%s mode at most %04o", r.Path, uint32(r.mode))
	if r.Owner != "" {
		s += ", owner " + r.Owner
	}
	if r.Group != "" {
		s += ", group " + strings.Join(append([]string{r.Group}, r.AcceptGroups...), " or ")
	}
	return s
}

// lookupIDs finds a name in a passwd-format file of the root.
func lookupID(t *Tree, file, name string) (int, error) {
	if n, err := strconv.Atoi(name); err == nil {
		return n, nil
	}
	data, err := t.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) && name == "root" {
		return 0, nil // root is 0 even in a tree without account files
	}
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(data), "\n") {
		f := strings.Split(l, ":")
		if len(f) >= 3 && f[0] == name {
			return strconv.Atoi(f[2])
		}
	}
	return 0, fmt.Errorf("%s has no entry %q", file, name)
}

type fileWant struct {
	uid, gid int
	gids     []int
}

func (r *FileMode) want(t *Tree) (fileWant, error) {
	w := fileWant{uid: -1, gid: -1}
	var err error
	if r.Owner != "" {
		if w.uid, err = lookupID(t, "/etc/passwd", r.Owner); err != nil {
			return w, err
		}
	}
	if r.Group != "" {
		if w.gid, err = lookupID(t, "/etc/group", r.Group); err != nil {
			return w, err
		}
		w.gids = append(w.gids, w.gid)
		for _, g := range r.AcceptGroups {
			id, err := lookupID(t, "/etc/group", g)
			if err == nil {
				w.gids = append(w.gids, id)
			}
		}
	}
	return w, nil
}

func (w fileWant) ok(st State, max fs.FileMode) []string {
	var bad []string
	if extra := st.Mode.Perm() &^ max; extra != 0 {
		bad = append(bad, fmt.Sprintf("mode %04o allows %04o more", uint32(st.Mode.Perm()), uint32(extra)))
	}
	if w.uid >= 0 && st.UID != w.uid {
		bad = append(bad, fmt.Sprintf("owner uid %d", st.UID))
	}
	if len(w.gids) > 0 {
		found := false
		for _, g := range w.gids {
			found = found || st.GID == g
		}
		if !found {
			bad = append(bad, fmt.Sprintf("group gid %d", st.GID))
		}
	}
	return bad
}

func (r *FileMode) files(t *Tree) ([]string, error) {
	if strings.ContainsAny(r.Path, "*?[") {
		return t.Glob(r.Path)
	}
	st, err := t.Stat(r.Path)
	if err != nil {
		return nil, err
	}
	if !st.Exists() {
		return nil, nil
	}
	return []string{r.Path}, nil
}

// Check compares every matching file's mode and owner.
func (r *FileMode) Check(_ context.Context, env *Env) Verdict {
	files, err := r.files(env.Tree)
	if err != nil {
		return errorVerdict(err)
	}
	if len(files) == 0 {
		return Verdict{Result: ResultNotApplicable, Detail: "no file matches " + r.Path}
	}
	w, err := r.want(env.Tree)
	if err != nil {
		return errorVerdict(err)
	}
	v := Verdict{Result: ResultPass, Expected: strings.TrimPrefix(r.Describe(), r.Path+" ")}
	var actual []string
	for _, f := range files {
		st, err := env.Tree.Stat(f)
		if err != nil {
			return errorVerdict(err)
		}
		actual = append(actual, fmt.Sprintf("%s %s", f, st))
		if bad := w.ok(st, r.mode); len(bad) > 0 {
			v.Result = ResultFail
			v.Detail = strings.TrimPrefix(v.Detail+"; ", "; ") + f + ": " + strings.Join(bad, ", ")
		}
	}
	v.Actual = strings.Join(actual, "; ")
	return v
}

// Apply removes extra permission bits and sets the owner and group.
func (r *FileMode) Apply(_ context.Context, env *Env) error {
	files, err := r.files(env.Tree)
	if err != nil {
		return err
	}
	w, err := r.want(env.Tree)
	if err != nil {
		return err
	}
	for _, f := range files {
		st, err := env.Tree.Stat(f)
		if err != nil {
			return err
		}
		if len(w.ok(st, r.mode)) == 0 {
			continue
		}
		mode := st.Mode&^fs.ModePerm | st.Mode.Perm()&r.mode
		uid, gid := st.UID, st.GID
		if w.uid >= 0 {
			uid = w.uid
		}
		if w.gid >= 0 && !containsInt(w.gids, gid) {
			gid = w.gid
		}
		if err := env.Tree.SetMeta(f, mode, uid, gid); err != nil {
			return err
		}
	}
	return nil
}

func containsInt(xs []int, x int) bool {
	for _, y := range xs {
		if x == y {
			return true
		}
	}
	return false
}

// FileKV is a key and value in a configuration file such as login.defs
// ("KEY value") or limits.conf ("domain type item value", KeyFields 3). The
// Files are read in order and the last setting wins; Apply edits Path,
// commenting out the conflicting lines and adding its own.
type FileKV struct {
	Type      string   `yaml:"type"`
	Path      string   `yaml:"path"`
	Files     []string `yaml:"files"`
	Key       string   `yaml:"key"`
	KeyFields int      `yaml:"key_fields"`
	Separator string   `yaml:"separator"`
	Default   string   `yaml:"default"`
	// Missing is the result when no file exists: notapplicable (default) or fail.
	Missing Result `yaml:"missing"`
	Expect  `yaml:",inline"`
}

// Validate checks the parameters.
func (r *FileKV) Validate() error {
	if !strings.HasPrefix(r.Path, "/") {
		return fmt.Errorf("path %q must be absolute inside the root, such as /etc/login.defs", r.Path)
	}
	if len(r.Files) == 0 {
		r.Files = []string{r.Path}
	}
	for _, f := range r.Files {
		if !strings.HasPrefix(f, "/") {
			return fmt.Errorf("files entry %q must be absolute inside the root", f)
		}
	}
	if r.KeyFields == 0 {
		r.KeyFields = 1
	}
	if r.KeyFields < 1 || r.KeyFields != len(strings.Fields(r.Key)) {
		return fmt.Errorf("key %q must have key_fields (%d) whitespace-separated words", r.Key, r.KeyFields)
	}
	switch r.Separator {
	case "", " ", "=":
	default:
		return fmt.Errorf("separator %q must be a space (default) or =", r.Separator)
	}
	switch r.Missing {
	case "":
		r.Missing = ResultNotApplicable
	case ResultNotApplicable, ResultFail:
	default:
		return fmt.Errorf("missing %q must be notapplicable or fail", r.Missing)
	}
	return r.Expect.validate()
}

// Describe says what the resource wants.
func (r *FileKV) Describe() string {
	return fmt.Sprintf("%s: %s %s", r.Path, r.Key, r.Expect.String())
}

func (r *FileKV) parseLine(text string) (string, string, bool) {
	if r.Separator == "=" {
		k, v, ok := strings.Cut(text, "=")
		return strings.TrimSpace(k), strings.TrimSpace(v), ok
	}
	f := strings.Fields(text)
	if len(f) <= r.KeyFields {
		return "", "", false
	}
	return strings.Join(f[:r.KeyFields], " "), strings.Join(f[r.KeyFields:], " "), true
}

func (r *FileKV) settings(t *Tree) ([]setting, bool, error) {
	var out []setting
	key := normSpace(r.Key)
	anyFile, err := scanFiles(t, r.Files, func(f string, line int, text string) {
		if k, v, ok := r.parseLine(text); ok && k == key {
			out = append(out, setting{file: f, line: line, value: v})
		}
	})
	return out, anyFile, err
}

// scanFiles calls fn for every configuration line (see configLines) of the
// files that exist among patterns (globs allowed), in order, and reports
// whether any file exists.
func scanFiles(t *Tree, patterns []string, fn func(file string, line int, text string)) (bool, error) {
	anyFile := false
	for _, pat := range patterns {
		files := []string{pat}
		if strings.ContainsAny(pat, "*?[") {
			var err error
			if files, err = t.Glob(pat); err != nil {
				return false, err
			}
		}
		for _, f := range files {
			data, err := t.ReadFile(f)
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return false, err
			}
			anyFile = true
			configLines(data, func(line int, text string) { fn(f, line, text) })
		}
	}
	return anyFile, nil
}

// Check reads the value in force from the files.
func (r *FileKV) Check(_ context.Context, env *Env) Verdict {
	settings, anyFile, err := r.settings(env.Tree)
	if err != nil {
		return errorVerdict(err)
	}
	v := Verdict{Expected: r.Expect.String()}
	switch {
	case len(settings) > 0:
		last := settings[len(settings)-1]
		v.Actual, v.Where = last.value, fmt.Sprintf("%s:%d", last.file, last.line)
	case !anyFile && r.Missing == ResultNotApplicable:
		return Verdict{Result: ResultNotApplicable, Detail: "no file " + strings.Join(r.Files, ", ")}
	case r.Default != "":
		v.Actual, v.Where, v.Implicit = r.Default, "default", true
	default:
		v.Actual = "(unset)"
	}
	return r.Expect.judge(v)
}

// Apply comments out conflicting settings and writes the key to Path: after
// the last commented-out line if Path held the key, else at its end.
func (r *FileKV) Apply(_ context.Context, env *Env) error {
	t := env.Tree
	settings, _, err := r.settings(t)
	if err != nil {
		return err
	}
	byFile := conflicts(settings, func(s setting) bool { return r.Expect.OK(s.value) })
	sep := " "
	if r.Separator == "=" {
		sep = " = " // auditd.conf needs the spaces; the others accept them
	}
	newLine := r.Key + sep + r.Value
	for file, lines := range byFile {
		data, err := t.ReadFile(file)
		if err != nil {
			return err
		}
		data = commentOut(data, lines)
		if file == r.Path {
			last := 0
			for l := range lines {
				last = max(last, l)
			}
			ls := strings.SplitAfter(string(data), "\n")
			ls = append(ls[:last], append([]string{newLine + "\n"}, ls[last:]...)...)
			data = []byte(strings.Join(ls, ""))
		}
		if err := t.EditFile(file, data); err != nil {
			return err
		}
	}
	if byFile[r.Path] != nil {
		return nil
	}
	data, err := t.ReadFile(r.Path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return t.WriteFile(r.Path, []byte(generatedHeader+newLine+"\n"), 0o644, 0, 0)
	case err != nil:
		return err
	}
	if len(data) > 0 && data[len(data)-1] != '\n' {
		data = append(data, '\n')
	}
	return t.EditFile(r.Path, append(data, newLine+"\n"...))
}
