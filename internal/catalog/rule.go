package catalog

import (
	"errors"
	"fmt"

	"pault.ag/go/debian/version"
)

// Rule is one applicability condition. Exactly one member is set.
type Rule struct {
	OS              *OSRule  `json:"os,omitempty"`               // fields of /etc/os-release
	Arch            string   `json:"arch,omitempty"`             // dpkg architecture; "all" holds on every machine
	Deb             *DebRule `json:"deb,omitempty"`              // state of an installed Debian package
	UpdateInstalled string   `json:"update_installed,omitempty"` // a Bulwark update id
	And             []Rule   `json:"and,omitempty"`              // all hold
	Or              []Rule   `json:"or,omitempty"`               // at least one holds
	Not             *Rule    `json:"not,omitempty"`              // does not hold
}

// OSRule holds when /etc/os-release has this ID and, when VersionID is set,
// this VERSION_ID.
type OSRule struct {
	ID        string `json:"id"`
	VersionID string `json:"version_id,omitempty"`
}

// DebRule is about one Debian package. With Installed false it holds when the
// package is not installed (no version bounds allowed then). Otherwise it
// holds when the package is installed and its version meets every bound
// given (Debian version ordering, as dpkg --compare-versions).
type DebRule struct {
	Package   string `json:"package"`
	Installed *bool  `json:"installed,omitempty"`
	VersionLT string `json:"version_lt,omitempty"`
	VersionLE string `json:"version_le,omitempty"`
	VersionEQ string `json:"version_eq,omitempty"`
	VersionGE string `json:"version_ge,omitempty"`
	VersionGT string `json:"version_gt,omitempty"`
}

// Facts are what the agent knows about its machine. Implementations read
// the machine (os-release, dpkg status, the agent's journal); this package
// never does.
type Facts interface {
	OSRelease() (id, versionID string)
	Arch() string
	DebPackage(name string) (installed bool, version string, err error)
	UpdateInstalled(id string) bool
}

// errNoMember and errManyMembers describe malformed rules built in code; rules
// from ParseYAML and ParseJSON are always well formed.
var (
	errNoMember    = errors.New("rule sets no condition (valid: os, arch, deb, update_installed, and, or, not)")
	errManyMembers = errors.New("rule sets more than one condition; wrap them in and")
)

// members counts the conditions set in r.
func (r *Rule) members() int {
	n := 0
	for _, set := range []bool{r.OS != nil, r.Arch != "", r.Deb != nil, r.UpdateInstalled != "", r.And != nil, r.Or != nil, r.Not != nil} {
		if set {
			n++
		}
	}
	return n
}

// Eval reports whether r holds on the machine f describes. Errors come from
// f or from a malformed rule; a rule that errs neither holds nor fails.
func (r Rule) Eval(f Facts) (bool, error) {
	return r.eval(f, 1)
}

func (r *Rule) eval(f Facts, depth int) (bool, error) {
	if depth > MaxRuleDepth {
		return false, fmt.Errorf("rules nested deeper than %d", MaxRuleDepth)
	}
	switch n := r.members(); {
	case n == 0:
		return false, errNoMember
	case n > 1:
		return false, errManyMembers
	}
	switch {
	case r.OS != nil:
		id, versionID := f.OSRelease()
		return id == r.OS.ID && (r.OS.VersionID == "" || versionID == r.OS.VersionID), nil
	case r.Arch != "":
		return r.Arch == "all" || r.Arch == f.Arch(), nil
	case r.Deb != nil:
		ok, err := r.Deb.eval(f)
		if err != nil {
			return false, fmt.Errorf("deb %s: %w", r.Deb.Package, err)
		}
		return ok, nil
	case r.UpdateInstalled != "":
		return f.UpdateInstalled(r.UpdateInstalled), nil
	case r.And != nil:
		if len(r.And) == 0 {
			return false, errors.New("and: lists no rules")
		}
		for i := range r.And {
			ok, err := r.And[i].eval(f, depth+1)
			if err != nil {
				return false, fmt.Errorf("and[%d]: %w", i, err)
			}
			if !ok {
				return false, nil
			}
		}
		return true, nil
	case r.Or != nil:
		if len(r.Or) == 0 {
			return false, errors.New("or: lists no rules")
		}
		for i := range r.Or {
			ok, err := r.Or[i].eval(f, depth+1)
			if err != nil {
				return false, fmt.Errorf("or[%d]: %w", i, err)
			}
			if ok {
				return true, nil
			}
		}
		return false, nil
	default: // r.Not != nil
		ok, err := r.Not.eval(f, depth+1)
		if err != nil {
			return false, fmt.Errorf("not: %w", err)
		}
		return !ok, nil
	}
}

func (d *DebRule) eval(f Facts) (bool, error) {
	installed, v, err := f.DebPackage(d.Package)
	if err != nil {
		return false, fmt.Errorf("query package: %w", err)
	}
	if d.Installed != nil && !*d.Installed {
		return !installed, nil
	}
	if !installed {
		return false, nil
	}
	have, err := parseDebVersion(v)
	if err != nil {
		return false, fmt.Errorf("installed version %q: %w", v, err)
	}
	for _, b := range d.bounds() {
		if b.value == "" {
			continue
		}
		want, err := parseDebVersion(b.value)
		if err != nil {
			return false, fmt.Errorf("%s %q: %w", b.field, b.value, err)
		}
		if !b.holds(version.Compare(have, want)) {
			return false, nil
		}
	}
	return true, nil
}

type bound struct {
	field string
	value string
	holds func(cmp int) bool
}

func (d *DebRule) bounds() []bound {
	return []bound{
		{"version_lt", d.VersionLT, func(c int) bool { return c < 0 }},
		{"version_le", d.VersionLE, func(c int) bool { return c <= 0 }},
		{"version_eq", d.VersionEQ, func(c int) bool { return c == 0 }},
		{"version_ge", d.VersionGE, func(c int) bool { return c >= 0 }},
		{"version_gt", d.VersionGT, func(c int) bool { return c > 0 }},
	}
}

// parseDebVersion parses a Debian version as dpkg does, and additionally
// refuses what pault.ag/go/debian/version lets through but dpkg rejects:
// surrounding space, an empty upstream version and an empty revision.
func parseDebVersion(s string) (version.Version, error) {
	if s == "" {
		return version.Version{}, errors.New("empty version")
	}
	if len(s) > 256 {
		return version.Version{}, errors.New("version longer than 256 bytes")
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f {
			return version.Version{}, fmt.Errorf("invalid byte %q in version", c)
		}
	}
	v, err := version.Parse(s)
	if err != nil {
		return version.Version{}, err
	}
	if v.Version == "" {
		return version.Version{}, errors.New("empty upstream version")
	}
	if s[len(s)-1] == '-' {
		return version.Version{}, errors.New("empty revision after '-'")
	}
	return v, nil
}

// Applicable reports whether every rule of u.AppliesTo holds on the machine
// f describes; an update without rules applies everywhere.
func (u *Update) Applicable(f Facts) (bool, error) {
	for i := range u.AppliesTo {
		ok, err := u.AppliesTo[i].eval(f, 1)
		if err != nil {
			return false, fmt.Errorf("update %s: applies_to[%d]: %w", u.ID, i, err)
		}
		if !ok {
			return false, nil
		}
	}
	return true, nil
}
