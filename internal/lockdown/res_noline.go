package lockdown

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"strings"
)

// FileNoLine is text a file must not hold: the operating system's name and
// version in the login banners (/etc/issue's \s \r \v \m escapes, "Debian
// GNU/Linux 12"), which tell an attacker what to look up before logging
// in. Lines are read as they are, with no comment syntax: every line of
// /etc/issue is shown. Apply removes the matching lines.
type FileNoLine struct {
	Type string `yaml:"type"`
	Path string `yaml:"path"`
	// Match is a Go regular expression over each raw line.
	Match string `yaml:"match"`
	// Requires is a path that must exist for the rule to apply; without
	// it: notapplicable.
	Requires string `yaml:"requires"`

	re *regexp.Regexp
}

// Validate checks the parameters.
func (r *FileNoLine) Validate() error {
	for _, p := range []string{r.Path, r.Requires} {
		if p != "" && !strings.HasPrefix(p, "/") {
			return fmt.Errorf("path %q must be absolute inside the root, such as /etc/issue", p)
		}
	}
	if r.Path == "" {
		return errors.New("path is required, such as /etc/issue")
	}
	if r.Match == "" {
		return errors.New("match is required: a regular expression for the lines the file must not hold")
	}
	re, err := regexp.Compile(r.Match)
	if err != nil {
		return fmt.Errorf("match %q is not a regular expression: %w", r.Match, err)
	}
	r.re = re
	return nil
}

// Describe says what the resource wants.
func (r *FileNoLine) Describe() string {
	return fmt.Sprintf("%s: no line matching %s", r.Path, r.re)
}

// found returns the file's lines and the 1-based numbers of those matching.
func (r *FileNoLine) found(t *Tree) ([]string, []int, error) {
	data, err := t.ReadFile(r.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	lines := strings.SplitAfter(string(data), "\n")
	var hits []int
	for i, l := range lines {
		if r.re.MatchString(strings.TrimRight(l, "\r\n")) {
			hits = append(hits, i+1)
		}
	}
	return lines, hits, nil
}

// Check looks for matching lines.
func (r *FileNoLine) Check(_ context.Context, env *Env) Verdict {
	if r.Requires != "" {
		st, err := env.Tree.Stat(r.Requires)
		if err != nil {
			return errorVerdict(err)
		}
		if !st.Exists() {
			return Verdict{Result: ResultNotApplicable, Detail: "no " + r.Requires}
		}
	}
	lines, hits, err := r.found(env.Tree)
	if err != nil {
		return errorVerdict(err)
	}
	v := Verdict{Expected: "no line matching " + r.re.String(), Where: r.Path}
	if len(hits) == 0 {
		v.Result, v.Actual = ResultPass, "none"
		return v
	}
	v.Result = ResultFail
	v.Actual = strings.TrimRight(lines[hits[0]-1], "\r\n")
	v.Where = fmt.Sprintf("%s:%d", r.Path, hits[0])
	if len(hits) > 1 {
		v.Detail = fmt.Sprintf("%d lines match", len(hits))
	}
	return v
}

// Apply removes the matching lines.
func (r *FileNoLine) Apply(_ context.Context, env *Env) error {
	lines, hits, err := r.found(env.Tree)
	if err != nil || len(hits) == 0 {
		return err
	}
	drop := map[int]bool{}
	for _, h := range hits {
		drop[h] = true
	}
	var b strings.Builder
	for i, l := range lines {
		if !drop[i+1] {
			b.WriteString(l)
		}
	}
	return env.Tree.EditFile(r.Path, []byte(b.String()))
}
