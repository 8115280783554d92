package lockdown

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
)

const sysctlDropIn = "/etc/sysctl.d/99-bulwark-lockdown.conf"

// sysctlDirs are read in this precedence for files of the same name, as
// systemd-sysctl and procps `sysctl --system` do.
var sysctlDirs = []string{"/etc/sysctl.d", "/run/sysctl.d", "/usr/local/lib/sysctl.d", "/usr/lib/sysctl.d", "/lib/sysctl.d"}

// Sysctl is one kernel parameter. Check reads /proc/sys on the running
// system, otherwise the sysctl.d files under the root (last one wins),
// falling back to Default, the kernel's own value. Apply writes a drop-in in
// /etc/sysctl.d and comments out conflicting lines in /etc.
type Sysctl struct {
	Type    string `yaml:"type"`
	Key     string `yaml:"key"`
	Default string `yaml:"default"`
	Expect  `yaml:",inline"`
}

// Validate checks the parameters.
func (r *Sysctl) Validate() error {
	if r.Key == "" || strings.ContainsAny(r.Key, " \t=/") || strings.Contains(r.Key, "..") {
		return fmt.Errorf("key %q must be a dotted sysctl name such as net.ipv4.ip_forward", r.Key)
	}
	return r.Expect.validate()
}

// Describe says what the resource wants.
func (r *Sysctl) Describe() string { return fmt.Sprintf("sysctl %s %s", r.Key, r.Expect.String()) }

func sysctlKey(k string) string { return strings.ReplaceAll(strings.TrimPrefix(k, "-"), "/", ".") }

// sysctlSettings returns every assignment of every key in the order
// `sysctl --system` applies them (the last one is in force).
func sysctlSettings(t *Tree) (map[string][]setting, error) {
	byName := map[string]string{}
	for _, dir := range sysctlDirs {
		files, err := t.Glob(dir + "/*.conf")
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			if _, ok := byName[path.Base(f)]; !ok {
				byName[path.Base(f)] = f
			}
		}
	}
	names := make([]string, 0, len(byName))
	for n := range byName {
		names = append(names, n)
	}
	sort.Strings(names)
	files := make([]string, 0, len(names)+1)
	for _, n := range names {
		files = append(files, byName[n])
	}
	files = append(files, "/etc/sysctl.conf")
	out := map[string][]setting{}
	for _, f := range files {
		data, err := t.ReadFile(f)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for i, l := range strings.Split(string(data), "\n") {
			l = strings.TrimSpace(l)
			if l == "" || l[0] == '#' || l[0] == ';' {
				continue
			}
			k, v, ok := strings.Cut(l, "=")
			if !ok {
				continue
			}
			key := sysctlKey(strings.TrimSpace(k))
			out[key] = append(out[key], setting{file: f, line: i + 1, value: normSpace(v)})
		}
	}
	return out, nil
}

// Check reads the value in force.
func (r *Sysctl) Check(ctx context.Context, env *Env) Verdict {
	v := Verdict{Expected: r.Expect.String()}
	settings, err := sysctlSettings(env.Tree)
	if err != nil {
		return errorVerdict(err)
	}
	v.Implicit = len(settings[r.Key]) == 0
	if env.Live != nil {
		val, err := env.Live.Sysctl(ctx, r.Key)
		if errors.Is(err, fs.ErrNotExist) {
			return Verdict{Result: ResultNotApplicable, Detail: "the running kernel has no " + r.Key}
		}
		if err != nil {
			return errorVerdict(err)
		}
		v.Actual, v.Where = normSpace(val), "/proc/sys"
	} else {
		if s := settings[r.Key]; len(s) > 0 {
			last := s[len(s)-1]
			v.Actual, v.Where = last.value, fmt.Sprintf("%s:%d", last.file, last.line)
		} else if r.Default != "" {
			v.Actual, v.Where = r.Default, "kernel default"
		} else {
			return Verdict{Result: ResultNotChecked, Expected: v.Expected, Detail: "no sysctl file sets " + r.Key + " and its kernel default is not known"}
		}
	}
	return r.Expect.judge(v)
}

// Apply writes the key to the lockdown drop-in and comments out other
// assignments: in place under /etc, in a replacement of the same name in
// /etc/sysctl.d for a package's file elsewhere.
func (r *Sysctl) Apply(_ context.Context, env *Env) error {
	t := env.Tree
	settings, err := sysctlSettings(t)
	if err != nil {
		return err
	}
	byFile := conflicts(settings[r.Key], func(s setting) bool {
		return s.file == sysctlDropIn || r.Expect.OK(s.value)
	})
	for file, lines := range byFile {
		if strings.HasPrefix(file, "/etc/") {
			continue
		}
		// A package's file (/usr/lib/sysctl.d/99-protect-links.conf) is not
		// edited: a file of the same name in /etc/sysctl.d replaces it, as
		// sysctl.d(5) says; it is the package's file with the line commented out.
		data, err := t.ReadFile(file)
		if err != nil {
			return err
		}
		data = append([]byte(generatedHeader+"# It replaces "+file+", whose conflicting lines are commented out.\n"), commentOut(data, lines)...)
		if err := t.WriteFile(path.Join("/etc/sysctl.d", path.Base(file)), data, 0o644, 0, 0); err != nil {
			return err
		}
		delete(byFile, file)
	}
	if err := commentOutConflicts(t, byFile); err != nil {
		return err
	}
	return setDropInLine(t, sysctlDropIn, r.Key, []string{r.Key + " = " + r.Value}, 0o644, func(l string) string {
		k, _, _ := strings.Cut(l, "=")
		return sysctlKey(strings.TrimSpace(k))
	})
}
