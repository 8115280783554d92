package lockdown

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"strconv"
	"strings"
)

// FileLine is a line a configuration file must hold, found by a regular
// expression over its lines (comments and surrounding space removed): audit
// rules, sudoers Defaults, shell settings, logrotate keywords. Without a
// capture group in Match any matching line passes; with one, the last match
// in Files (read in order, globs sorted) is the value in force and must meet
// the expectation. Apply comments out matches with a wrong value and, if no
// good one is left, appends Line to Path.
type FileLine struct {
	Type string `yaml:"type"`
	// Path is where apply writes; Files where check looks (default Path).
	Path  string   `yaml:"path"`
	Files []string `yaml:"files"`
	// Match is a Go regular expression; empty means Line itself, spaces
	// normalized.
	Match string `yaml:"match"`
	// Line is what apply writes: one or more lines, one of which matches.
	Line string `yaml:"line"`
	// Mode of Path when apply creates it (default 0644).
	Mode string `yaml:"mode"`
	// Requires is a path that must exist for the rule to apply (the
	// component's configuration directory); without it: notapplicable.
	Requires string `yaml:"requires"`
	Expect   `yaml:",inline"`

	re      *regexp.Regexp
	capture bool
	mode    fs.FileMode
}

// Validate checks the parameters.
func (r *FileLine) Validate() error {
	if !strings.HasPrefix(r.Path, "/") {
		return fmt.Errorf("path %q must be absolute inside the root, such as /etc/audit/rules.d/50-bulwark.rules", r.Path)
	}
	if len(r.Files) == 0 {
		r.Files = []string{r.Path}
	}
	for _, f := range append([]string{r.Requires}, r.Files...) {
		if f != "" && !strings.HasPrefix(f, "/") {
			return fmt.Errorf("files and requires entry %q must be absolute inside the root", f)
		}
	}
	if strings.TrimSpace(r.Line) == "" {
		return errors.New("line is required: it is what apply writes")
	}
	pat := r.Match
	if pat == "" {
		pat = "^" + strings.Join(strings.Fields(regexp.QuoteMeta(strings.TrimSpace(r.Line))), `\s+`) + "$"
	}
	re, err := regexp.Compile(pat)
	if err != nil {
		return fmt.Errorf("match %q is not a regular expression: %w", r.Match, err)
	}
	r.re = re
	switch re.NumSubexp() {
	case 0:
		if r.Value != "" || len(r.Allowed) > 0 || r.Min != nil || r.Max != nil {
			return errors.New("value, allowed, min and max need a capture group in match: the part of the line they compare")
		}
	case 1:
		r.capture = true
		if err := r.Expect.validate(); err != nil {
			return err
		}
	default:
		return fmt.Errorf("match %q has %d capture groups; use at most one, (?:...) for the others", r.Match, re.NumSubexp())
	}
	m := uint64(0o644)
	if r.Mode != "" {
		if m, err = strconv.ParseUint(r.Mode, 8, 32); err != nil || m > 0o777 {
			return fmt.Errorf("mode %q must be octal permission bits such as 0640", r.Mode)
		}
	}
	r.mode = fs.FileMode(m)
	// What apply writes must pass the check.
	good := false
	configLines([]byte(r.Line), func(_ int, text string) {
		if v, ok := r.match(text); ok && (!r.capture || r.Expect.OK(v)) {
			good = true
		}
	})
	if !good {
		return fmt.Errorf("line %q does not itself match %q with an accepted value", r.Line, r.re)
	}
	return nil
}

// match reports whether a line matches, and its captured value.
func (r *FileLine) match(text string) (string, bool) {
	m := r.re.FindStringSubmatch(normSpace(text))
	if m == nil {
		return "", false
	}
	if r.capture {
		return m[1], true
	}
	return m[0], true
}

// Describe says what the resource wants.
func (r *FileLine) Describe() string {
	if r.capture {
		return fmt.Sprintf("%s: a line matching %s with %s", strings.Join(r.Files, ", "), r.re, r.Expect.String())
	}
	return fmt.Sprintf("%s: a line matching %s", strings.Join(r.Files, ", "), r.re)
}

func (r *FileLine) settings(t *Tree) ([]setting, error) {
	var out []setting
	_, err := scanFiles(t, r.Files, func(f string, line int, text string) {
		if v, ok := r.match(text); ok {
			out = append(out, setting{file: f, line: line, value: v})
		}
	})
	return out, err
}

func (r *FileLine) applicable(t *Tree) (bool, error) {
	if r.Requires == "" {
		return true, nil
	}
	st, err := t.Stat(r.Requires)
	return st.Exists(), err
}

// Check finds the line.
func (r *FileLine) Check(_ context.Context, env *Env) Verdict {
	if ok, err := r.applicable(env.Tree); err != nil {
		return errorVerdict(err)
	} else if !ok {
		return Verdict{Result: ResultNotApplicable, Detail: "no " + r.Requires + ": the component is not installed"}
	}
	settings, err := r.settings(env.Tree)
	if err != nil {
		return errorVerdict(err)
	}
	v := Verdict{Expected: "a line matching " + r.re.String()}
	if r.capture {
		v.Expected = r.Expect.String()
	}
	switch {
	case len(settings) == 0:
		v.Result, v.Actual = ResultFail, "(no such line)"
		return v
	case !r.capture:
		s := settings[0]
		v.Result, v.Actual, v.Where = ResultPass, s.value, fmt.Sprintf("%s:%d", s.file, s.line)
		return v
	}
	last := settings[len(settings)-1]
	v.Actual, v.Where = last.value, fmt.Sprintf("%s:%d", last.file, last.line)
	return r.Expect.judge(v)
}

// Apply comments out matching lines with a wrong value and appends Line to
// Path unless a good line is left.
func (r *FileLine) Apply(_ context.Context, env *Env) error {
	t := env.Tree
	settings, err := r.settings(t)
	if err != nil {
		return err
	}
	if r.capture {
		if err := commentOutConflicts(t, conflicts(settings, func(s setting) bool { return r.Expect.OK(s.value) })); err != nil {
			return err
		}
		var kept []setting
		for _, s := range settings {
			if r.Expect.OK(s.value) {
				kept = append(kept, s)
			}
		}
		settings = kept
	}
	if len(settings) > 0 {
		return nil
	}
	line := strings.TrimRight(r.Line, "\n") + "\n"
	data, err := t.ReadFile(r.Path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return t.WriteFile(r.Path, []byte(generatedHeader+line), r.mode, 0, 0)
	case err != nil:
		return err
	}
	if len(data) > 0 && data[len(data)-1] != '\n' {
		data = append(data, '\n')
	}
	return t.EditFile(r.Path, append(data, line...))
}
