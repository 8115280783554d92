package lockdown

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
)

// PAMProfile enables a PAM module the Debian way: profiles in
// /usr/share/pam-configs that pam-auth-update merges into
// /etc/pam.d/common-*, so a later pam-auth-update run (a package upgrade)
// keeps them. Check wants each profile file with exactly its content and
// each common file's lines to match Expect's expressions in order. Apply
// stages the profile files, then runs the root's own pam-auth-update
// --package --enable on copies of /etc/pam.d, /var/lib/pam and debconf's
// database (bind-mounted over the real ones in a private mount namespace,
// chrooted into the root), and stages whatever it wrote: the engine
// journals and writes those files like any other, so undo restores every
// byte and no hand-written jump offsets (pam_unix's success=N) can be
// wrong. It needs root; otherwise it is left to be done by hand.
type PAMProfile struct {
	Type string `yaml:"type"`
	// Profiles are pam-configs files by name ([a-z0-9-]), with content.
	Profiles map[string]string `yaml:"profiles"`
	// Module is the PAM module the profiles use; without it in the
	// root's security directories the rule is notapplicable.
	Module string `yaml:"module"`
	// Expect maps a file to the expressions its lines (comments removed)
	// must match, in order.
	Expect map[string][]string `yaml:"expect"`

	expect map[string][]*regexp.Regexp
	names  []string
}

var pamProfileName = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,63}$`) })

// Paths pam-auth-update reads and writes.
const (
	pamConfigs    = "/usr/share/pam-configs"
	pamAuthUpdate = "/usr/sbin/pam-auth-update"
)

// pamStateDirs are the directories pam-auth-update writes, copied into the
// sandbox and bind-mounted over the root's.
var pamStateDirs = []string{"/etc/pam.d", pamConfigs, "/var/lib/pam", "/var/cache/debconf"}

// Validate checks the parameters.
func (r *PAMProfile) Validate() error {
	if len(r.Profiles) == 0 {
		return errors.New("profiles: name at least one pam-configs profile with its content")
	}
	for n, c := range r.Profiles {
		if !pamProfileName().MatchString(n) {
			return fmt.Errorf("profile name %q: use 1-64 of a-z 0-9 -", n)
		}
		if !strings.Contains(c, "Name:") {
			return fmt.Errorf("profile %s: a pam-configs profile starts with a Name: field", n)
		}
		r.names = append(r.names, n)
	}
	sort.Strings(r.names)
	if !regexp.MustCompile(`^pam_[a-z0-9_]+\.so$`).MatchString(r.Module) {
		return fmt.Errorf("module %q: name the PAM module, such as pam_faillock.so", r.Module)
	}
	if len(r.Expect) == 0 {
		return errors.New("expect: give the lines the common files must hold, as regular expressions")
	}
	r.expect = map[string][]*regexp.Regexp{}
	for f, pats := range r.Expect {
		if !strings.HasPrefix(f, "/etc/pam.d/") {
			return fmt.Errorf("expect file %q: use a file of /etc/pam.d", f)
		}
		for _, p := range pats {
			re, err := regexp.Compile(p)
			if err != nil {
				return fmt.Errorf("expect %s: %q is not a regular expression: %w", f, p, err)
			}
			r.expect[f] = append(r.expect[f], re)
		}
	}
	return nil
}

// Describe says what the resource wants.
func (r *PAMProfile) Describe() string {
	return fmt.Sprintf("%s enabled with pam-auth-update (profiles %s in %s)", r.Module, strings.Join(r.names, ", "), pamConfigs)
}

func (r *PAMProfile) moduleFound(t *Tree) bool {
	dirs := []string{"/usr/lib", "/lib"}
	for _, base := range []string{"/usr/lib/*", "/lib/*"} {
		m, _ := t.Glob(base) // multiarch directories: /usr/lib/x86_64-linux-gnu
		dirs = append(dirs, m...)
	}
	for _, d := range dirs {
		if st, err := t.Stat(d + "/security/" + r.Module); err == nil && st.Kind == KindFile {
			return true
		}
	}
	return false
}

// pamLines are a PAM file's lines without comments and blank lines, with
// runs of space made one.
func pamLines(b []byte) []string {
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if i := strings.IndexByte(l, '#'); i >= 0 {
			l = l[:i]
		}
		if l = strings.Join(strings.Fields(l), " "); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// Check reads the profiles and the common files.
func (r *PAMProfile) Check(ctx context.Context, env *Env) Verdict {
	t := env.Tree
	for _, p := range []string{pamAuthUpdate, "/etc/pam.d/common-auth"} {
		if _, err := t.Stat(p); err != nil {
			return Verdict{Result: ResultNotApplicable, Detail: p + " not found: PAM is not managed by pam-auth-update here"}
		}
	}
	if !r.moduleFound(t) {
		return Verdict{Result: ResultNotApplicable, Detail: r.Module + " is not installed"}
	}
	v := Verdict{Result: ResultFail, Expected: r.Describe()}
	for _, n := range r.names {
		p := path.Join(pamConfigs, n)
		b, err := t.ReadFile(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			v.Actual, v.Where = "no profile "+n, p
			return v
		case err != nil:
			return errorVerdict(err)
		case string(b) != r.Profiles[n]:
			v.Actual, v.Where = "profile "+n+" differs", p
			return v
		}
	}
	files := make([]string, 0, len(r.expect))
	for f := range r.expect {
		files = append(files, f)
	}
	sort.Strings(files)
	for _, f := range files {
		b, err := t.ReadFile(f)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return errorVerdict(err)
		}
		lines, i := pamLines(b), 0
		for _, re := range r.expect[f] {
			for i < len(lines) && !re.MatchString(lines[i]) {
				i++
			}
			if i == len(lines) {
				v.Actual, v.Where = fmt.Sprintf("no line matching %s (in order)", re), f
				return v
			}
			i++
		}
	}
	return Verdict{Result: ResultPass, Expected: v.Expected, Actual: "enabled", Where: strings.Join(files, ", ")}
}

// Apply stages the profiles and what pam-auth-update makes of them.
func (r *PAMProfile) Apply(ctx context.Context, env *Env) error {
	t := env.Tree
	if os.Geteuid() != 0 || env.Cmd == nil {
		return fmt.Errorf("%w: pam-auth-update runs as root in a private mount namespace; as root, write the profiles %s to %s and run pam-auth-update --enable %s",
			ErrManual, strings.Join(r.names, ", "), pamConfigs, strings.Join(r.names, " "))
	}
	for _, d := range pamStateDirs {
		if st, err := t.Stat(d); err != nil || st.Kind != KindDir {
			return fmt.Errorf("%w: %s is missing, so pam-auth-update cannot run here", ErrManual, d)
		}
	}
	for _, n := range r.names {
		if err := t.WriteFile(path.Join(pamConfigs, n), []byte(r.Profiles[n]), 0o644, 0, 0); err != nil {
			return err
		}
	}
	sand, err := os.MkdirTemp("", "bulwark-pam-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(sand)
	before := map[string][]byte{}
	for i, d := range pamStateDirs {
		dir := filepath.Join(sand, fmt.Sprint(i))
		if err := os.Mkdir(dir, 0o755); err != nil {
			return err
		}
		files, err := t.Glob(d + "/*")
		if err != nil {
			return err
		}
		for _, p := range files {
			st, err := t.Stat(p)
			if err != nil || st.Kind != KindFile {
				continue
			}
			b, err := t.ReadFile(p)
			if err != nil {
				return err
			}
			before[p] = b
			if err := os.WriteFile(filepath.Join(dir, path.Base(p)), b, st.Mode.Perm()); err != nil {
				return err
			}
		}
	}
	root := t.Root()
	script := `set -e; r="$1"; s="$2"; shift 2
mount --bind "$s/0" "$r/etc/pam.d"
mount --bind "$s/1" "$r/usr/share/pam-configs"
mount --bind "$s/2" "$r/var/lib/pam"
mount --bind "$s/3" "$r/var/cache/debconf"
exec chroot "$r" env DEBIAN_FRONTEND=noninteractive ` + pamAuthUpdate + ` --package --enable "$@"`
	args := append([]string{"--mount", "--propagation", "private", "sh", "-c", script, "sh", root, sand}, r.names...)
	if _, err := env.Cmd.Run(ctx, "unshare", args...); err != nil {
		return fmt.Errorf("pam-auth-update: %w", err)
	}
	changed := false
	for i, d := range pamStateDirs {
		ents, err := os.ReadDir(filepath.Join(sand, fmt.Sprint(i)))
		if err != nil {
			return err
		}
		for _, e := range ents {
			if !e.Type().IsRegular() {
				continue
			}
			p := path.Join(d, e.Name())
			b, err := os.ReadFile(filepath.Join(sand, fmt.Sprint(i), e.Name()))
			if err != nil {
				return err
			}
			old, had := before[p]
			switch {
			case had && bytes.Equal(old, b):
				continue
			case had:
				err = t.EditFile(p, b)
			default:
				info, ierr := e.Info()
				if ierr != nil {
					return ierr
				}
				err = t.WriteFile(p, b, info.Mode().Perm(), 0, 0)
			}
			if err != nil {
				return err
			}
			if strings.HasPrefix(p, "/etc/pam.d/") {
				changed = true
			}
		}
	}
	if !changed {
		return fmt.Errorf("%w: pam-auth-update left /etc/pam.d/common-* unchanged (local modifications there?); run pam-auth-update --enable %s as root and resolve them",
			ErrManual, strings.Join(r.names, " "))
	}
	return nil
}
