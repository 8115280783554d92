package lockdown

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
)

// Result is a rule's outcome, in the XCCDF vocabulary.
type Result string

// Results.
const (
	ResultPass          Result = "pass"
	ResultFail          Result = "fail"
	ResultFixed         Result = "fixed"
	ResultError         Result = "error"
	ResultNotApplicable Result = "notapplicable"
	ResultNotChecked    Result = "notchecked"
	// ResultWaived is not a verdict a resource gives: it labels a failing
	// rule the profile waives, in counts, summaries and reports.
	ResultWaived Result = "waived"
)

// Verdict is what a resource found.
type Verdict struct {
	Result   Result `json:"result"`
	Expected string `json:"expected,omitempty"`
	Actual   string `json:"actual,omitempty"`
	// Where says where the value in force comes from ("/etc/ssh/sshd_config:14",
	// "sshd -T", "default").
	Where  string `json:"where,omitempty"`
	Detail string `json:"detail,omitempty"`
	// Implicit is set when the value in force is a compiled-in default that
	// no file states. Such a rule passes, but auditors (OpenSCAP, CIS) read
	// files, so apply writes the value down.
	Implicit bool `json:"implicit,omitempty"`
}

func errorVerdict(err error) Verdict { return Verdict{Result: ResultError, Detail: err.Error()} }

// Env is what a resource checks and changes: the files under a root and,
// when the root is the running system, the values in force.
type Env struct {
	Tree *Tree
	// Live probes the running system; nil unless the root is "/".
	Live Prober
	// Cmd runs programs for resources whose apply computes files with the
	// root's own tools (pam-auth-update); nil in checks of a staged tree.
	Cmd Commander
}

// Prober reads values in force on the running system.
type Prober interface {
	// SSHD returns `sshd -T` as lower-case keyword -> value.
	SSHD(ctx context.Context) (map[string]string, error)
	// Sysctl reads /proc/sys for a dotted key; fs.ErrNotExist if the kernel
	// has no such key.
	Sysctl(ctx context.Context, key string) (string, error)
	// UnitState returns `systemctl is-enabled` for a unit.
	UnitState(ctx context.Context, unit string) (string, error)
	// ModuleLoaded reports whether a kernel module is loaded.
	ModuleLoaded(ctx context.Context, name string) (bool, error)
	// Mounts returns the options of mount points as in /proc/self/mounts.
	Mounts(ctx context.Context) (map[string][]string, error)
}

// Resource is one kind of setting a rule checks and fixes. Its parameters
// are decoded from the rule's YAML. Check must not change anything; Apply
// stages changes in env.Tree and leaves writing, journaling and undo to the
// engine, which records every path's prior bytes, mode, owner and link.
// New types are one file each, added to ResourceTypes.
type Resource interface {
	// Validate checks the parameters after decoding.
	Validate() error
	// Describe says in one line what the resource wants.
	Describe() string
	Check(ctx context.Context, env *Env) Verdict
	Apply(ctx context.Context, env *Env) error
}

// SessionRisker is implemented by resources whose change can lock out the
// SSH session bulwark runs in. It returns why, or "" when the change is safe
// for that session.
type SessionRisker interface {
	SessionRisk(s Session) string
}

// ErrManual is returned by Apply when the change is not made automatically;
// the error says what to do by hand.
var ErrManual = errors.New("not changed automatically")

// ResourceTypes returns the constructors of every resource type by name.
func ResourceTypes() map[string]func() Resource {
	return map[string]func() Resource{
		"sshd_option":    func() Resource { return new(SSHDOption) },
		"sysctl":         func() Resource { return new(Sysctl) },
		"file_mode":      func() Resource { return new(FileMode) },
		"file_kv":        func() Resource { return new(FileKV) },
		"service":        func() Resource { return new(Service) },
		"kernel_module":  func() Resource { return new(KernelModule) },
		"package_absent": func() Resource { return new(PackageAbsent) },
		"package":        func() Resource { return new(PackageInstalled) },
		"mount_option":   func() Resource { return new(MountOption) },
		"nginx":          func() Resource { return new(NginxDirective) },
		"file_line":      func() Resource { return new(FileLine) },
		"file_no_line":   func() Resource { return new(FileNoLine) },
		"pam_profile":    func() Resource { return new(PAMProfile) },
	}
}

// Expect is the value a setting must have: exactly Value, or one of Allowed,
// or a number within Min and Max. Apply writes Value.
type Expect struct {
	Value   string   `yaml:"value"`
	Allowed []string `yaml:"allowed"`
	Min     *float64 `yaml:"min"`
	Max     *float64 `yaml:"max"`
	// Units parses numbers: "" (plain), "time" (sshd: 90, 2m, 1h), "size"
	// (nginx: 512k, 1m), "octal" (0027).
	Units string `yaml:"units"`
	// ForbidItems makes the value a comma-separated list (sshd's Ciphers)
	// that passes when it holds none of these items.
	ForbidItems []string `yaml:"forbid_items"`
}

func (e *Expect) validate() error {
	if e.Value == "" {
		return errors.New("value is required: it is what apply writes")
	}
	switch e.Units {
	case "", "time", "size", "octal":
	default:
		return fmt.Errorf("units %q is not one of time, size, octal (or empty)", e.Units)
	}
	if e.Min != nil || e.Max != nil {
		if _, err := parseNumber(e.Value, e.Units); err != nil {
			return fmt.Errorf("value %q is not a number: %w", e.Value, err)
		}
	}
	if !e.OK(e.Value) {
		return fmt.Errorf("value %q does not itself satisfy allowed/min/max", e.Value)
	}
	return nil
}

// OK reports whether actual satisfies the expectation.
func (e *Expect) OK(actual string) bool {
	actual = normSpace(actual)
	if len(e.ForbidItems) > 0 {
		for _, item := range strings.Split(actual, ",") {
			for _, bad := range e.ForbidItems {
				if strings.EqualFold(strings.TrimSpace(item), bad) {
					return false
				}
			}
		}
		return actual != ""
	}
	if e.Min != nil || e.Max != nil {
		n, err := parseNumber(actual, e.Units)
		if err != nil {
			return false
		}
		if e.Min != nil && n < *e.Min {
			return false
		}
		if e.Max != nil && n > *e.Max {
			return false
		}
		return true
	}
	if len(e.Allowed) > 0 {
		for _, a := range e.Allowed {
			if strings.EqualFold(normSpace(a), actual) || e.Units == "octal" && octalEq(a, actual) {
				return true
			}
		}
		return false
	}
	if e.Units == "octal" {
		return octalEq(e.Value, actual)
	}
	return strings.EqualFold(normSpace(e.Value), actual)
}

// judge sets v's result from its Actual value: pass or fail.
func (e *Expect) judge(v Verdict) Verdict {
	v.Result = ResultFail
	if e.OK(v.Actual) {
		v.Result = ResultPass
	}
	return v
}

// String describes the expectation for a person.
func (e *Expect) String() string {
	switch {
	case len(e.ForbidItems) > 0:
		return "none of " + strings.Join(e.ForbidItems, ",")
	case e.Min != nil && e.Max != nil:
		return fmt.Sprintf("between %s and %s", fmtNum(*e.Min), fmtNum(*e.Max))
	case e.Min != nil:
		return fmt.Sprintf("at least %s", fmtNum(*e.Min))
	case e.Max != nil:
		return fmt.Sprintf("at most %s", fmtNum(*e.Max))
	case len(e.Allowed) > 0:
		return "one of " + strings.Join(e.Allowed, ", ")
	}
	return e.Value
}

func fmtNum(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

func octalEq(a, b string) bool {
	x, err1 := strconv.ParseUint(a, 8, 32)
	y, err2 := strconv.ParseUint(b, 8, 32)
	return err1 == nil && err2 == nil && x == y
}

func normSpace(s string) string { return strings.Join(strings.Fields(s), " ") }

// parseNumber reads a number in the given units: plain, time in seconds
// (sshd's 1h30m form), size in bytes (nginx's 10k, 1m, 1g) or octal.
func parseNumber(s, units string) (float64, error) {
	s = strings.TrimSpace(strings.ToLower(s))
	switch units {
	case "octal":
		n, err := strconv.ParseUint(s, 8, 32)
		return float64(n), err
	case "size":
		mult := 1.0
		switch {
		case strings.HasSuffix(s, "k"):
			mult, s = 1024, strings.TrimSuffix(s, "k")
		case strings.HasSuffix(s, "m"):
			mult, s = 1<<20, strings.TrimSuffix(s, "m")
		case strings.HasSuffix(s, "g"):
			mult, s = 1<<30, strings.TrimSuffix(s, "g")
		}
		n, err := strconv.ParseFloat(s, 64)
		return n * mult, err
	case "time":
		if n, err := strconv.ParseFloat(s, 64); err == nil {
			return n, nil
		}
		total, num := 0.0, ""
		for _, r := range s {
			if r >= '0' && r <= '9' {
				num += string(r)
				continue
			}
			n, err := strconv.ParseFloat(num, 64)
			if err != nil {
				return 0, fmt.Errorf("time %q", s)
			}
			switch r {
			case 's':
			case 'm':
				n *= 60
			case 'h':
				n *= 3600
			case 'd':
				n *= 86400
			case 'w':
				n *= 7 * 86400
			default:
				return 0, fmt.Errorf("time %q: unit %q is not one of s m h d w", s, r)
			}
			total += n
			num = ""
		}
		if num != "" {
			n, err := strconv.ParseFloat(num, 64)
			if err != nil {
				return 0, err
			}
			total += n
		}
		return total, nil
	}
	return strconv.ParseFloat(s, 64)
}

// Commander runs programs; the engine and the live prober use it so that
// tests can see what would run.
type Commander interface {
	Run(ctx context.Context, name string, args ...string) (stdout []byte, err error)
}

// ExecCommander runs programs with os/exec.
type ExecCommander struct{}

// Run runs name with args and returns its standard output; a failure carries
// the standard error.
func (ExecCommander) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if len(msg) > 2000 {
			msg = msg[:2000]
		}
		return stdout.Bytes(), fmt.Errorf("%s: %w: %s", name, err, msg)
	}
	return stdout.Bytes(), nil
}

// commentPrefix marks the lines lockdown comments out, so a person (and
// undo) can see which lines it disabled.
const commentPrefix = "#bulwark-lockdown# "

// generatedHeader starts every drop-in file lockdown writes.
const generatedHeader = "# Written by bulwark lockdown; `bulwark lockdown undo` restores the previous state.\n"

// setting is one place a configuration value is set: file, 1-based line
// and the value there.
type setting struct {
	file  string
	line  int
	value string
}

// conflicts collects, per file, the lines of the settings that skip does not
// let stand.
func conflicts(settings []setting, skip func(setting) bool) map[string]map[int]bool {
	out := map[string]map[int]bool{}
	for _, s := range settings {
		if skip(s) {
			continue
		}
		if out[s.file] == nil {
			out[s.file] = map[int]bool{}
		}
		out[s.file][s.line] = true
	}
	return out
}

// commentOutConflicts comments out the conflicting lines in each file of t.
func commentOutConflicts(t *Tree, byFile map[string]map[int]bool) error {
	for file, lines := range byFile {
		data, err := t.ReadFile(file)
		if err != nil {
			return err
		}
		if err := t.EditFile(file, commentOut(data, lines)); err != nil {
			return err
		}
	}
	return nil
}

// commentOut comments out the given 1-based lines of data.
func commentOut(data []byte, lines map[int]bool) []byte {
	ls := strings.SplitAfter(string(data), "\n")
	for i := range ls {
		if lines[i+1] {
			ls[i] = commentPrefix + ls[i]
		}
	}
	return []byte(strings.Join(ls, ""))
}

// uncommentedLines iterates over the lines of a config file with comments
// ('#' to end of line) and surrounding space removed; blank lines are
// skipped. Line numbers are 1-based.
func configLines(data []byte, f func(line int, text string)) {
	for i, l := range strings.Split(string(data), "\n") {
		if j := strings.IndexByte(l, '#'); j >= 0 {
			l = l[:j]
		}
		l = strings.TrimSpace(l)
		if l != "" {
			f(i+1, l)
		}
	}
}
