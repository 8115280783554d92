package catalog

import (
	"errors"
	"fmt"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
)

var (
	idRE       = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`) })
	sha256RE   = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[0-9a-f]{64}$`) })
	cveRE      = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^CVE-[0-9]{4}-[0-9]{4,19}$`) })
	dateRE     = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}$`) })
	payloadRE  = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+~-]{0,254}$`) })
	profileRE  = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`) })
	osValueRE  = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z0-9][a-z0-9._~-]{0,63}$`) }) // os-release ID and VERSION_ID charset
	archRE     = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,63}$`) })
	debNameRE  = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]{1,127}$`) })
	idValid    = "letters, digits, '.', '_' and '-', starting with a letter or digit, at most 128"
	maxTitle   = 256
	maxAdvise  = 128
	maxDescr   = 64 << 10
	maxPrefix  = 4096
	refsFields = []string{"supersedes", "requires"}
)

// validator collects problems, giving each the line of its field and
// skipping fields that already failed to decode.
type validator struct {
	u       *Update
	file    string
	bad     map[string]bool
	errs    []*FieldError
	dropped int
}

// maxProblems caps the problems formatted for one document, so that a
// megabyte of unknown fields costs neither seconds nor a huge message.
const maxProblems = 100

func (v *validator) add(field, format string, args ...any) {
	if v.bad[field] {
		return
	}
	if len(v.errs) >= maxProblems {
		v.dropped++
		return
	}
	v.errs = append(v.errs, &FieldError{File: v.file, Line: v.u.lineNear(field), Field: field, Msg: fmt.Sprintf(format, args...)})
}

// lineNear returns the line of field or, for a field that was not written
// (a missing payloads[0].file), of the nearest enclosing field that was.
func (u *Update) lineNear(field string) int {
	for field != "" {
		if l := u.lines[field]; l > 0 {
			return l
		}
		field = field[:max(strings.LastIndexAny(field, ".["), 0)]
	}
	return 0
}

// Validate checks everything about u that can be checked without a
// repository: required fields, value sets, id, CVE, date and file name syntax,
// installer requirements and rule structure. It returns every problem
// (errors.Join of *FieldError, sorted by line), or nil.
func (u *Update) Validate() error {
	if errs, dropped := u.validate("", nil); len(errs) > 0 {
		return joinFieldErrors("", errs, dropped)
	}
	return nil
}

// joinFieldErrors sorts problems by line and joins at most maxProblems of
// them, adding a count of the rest.
func joinFieldErrors(file string, errs []*FieldError, dropped int) error {
	sort.SliceStable(errs, func(i, j int) bool { return errs[i].Line < errs[j].Line })
	if len(errs) > maxProblems {
		dropped += len(errs) - maxProblems
		errs = errs[:maxProblems]
	}
	list := make([]error, 0, len(errs)+1)
	for _, e := range errs {
		list = append(list, e)
	}
	if dropped > 0 {
		list = append(list, &FieldError{File: file, Msg: fmt.Sprintf("%d more problems not shown", dropped)})
	}
	return errors.Join(list...)
}

func (u *Update) validate(file string, bad map[string]bool) ([]*FieldError, int) {
	v := &validator{u: u, file: file, bad: bad}

	switch {
	case u.ID == "":
		v.add("id", "required: a unique, stable id such as BW-2026-0042 (%s)", idValid)
	case !idRE().MatchString(u.ID):
		v.add("id", "%q is not a valid id (%s)", u.ID, idValid)
	}
	if u.Revision < 0 {
		v.add("revision", "%d is negative; revisions count up from 1", u.Revision)
	}
	v.text("title", u.Title, maxTitle, true, false)
	v.text("advisory", u.Advisory, maxAdvise, false, false)
	v.text("description", u.Description, maxDescr, false, true)
	switch {
	case u.Product == "":
		v.add("product", "required: the catalog category, such as debian-12 (%s)", idValid)
	case !idRE().MatchString(u.Product):
		v.add("product", "%q is not a valid product (%s)", u.Product, idValid)
	}
	if _, err := ParseClassification(string(u.Classification)); err != nil {
		v.add("classification", "%s", requiredOr(u.Classification == "", joinNames(classifications), err))
	}
	if _, err := ParseSeverity(string(u.Severity)); err != nil {
		v.add("severity", "%s", requiredOr(u.Severity == "", joinNames(severities), err))
	}
	if _, err := ParseReboot(string(u.Reboot)); err != nil {
		v.add("reboot", "%s", requiredOr(u.Reboot == "", joinNames(reboots), err))
	}
	v.released()
	v.cves()
	v.refs()
	v.installer()
	v.payloads()
	for i := range u.AppliesTo {
		v.rule(&u.AppliesTo[i], "applies_to["+strconv.Itoa(i)+"]", 1)
	}
	return v.errs, v.dropped
}

func requiredOr(missing bool, valid string, err error) string {
	if missing {
		return "required: one of " + valid
	}
	return err.Error()
}

// text checks a free-text field: valid UTF-8, no control characters (line
// breaks and tabs allowed only in multi-line fields), at most max bytes.
func (v *validator) text(field, s string, max int, required, multiline bool) {
	if s == "" {
		if required {
			v.add(field, "required: a short human-readable %s", field)
		}
		return
	}
	if len(s) > max {
		v.add(field, "%d bytes long; at most %d", len(s), max)
		return
	}
	if !utf8.ValidString(s) {
		v.add(field, "not valid UTF-8")
		return
	}
	for _, r := range s {
		if multiline && (r == '\n' || r == '\t') {
			continue
		}
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			v.add(field, "contains control character %U; write plain text%s", r, map[bool]string{true: " (line breaks and tabs allowed)", false: " on one line"}[multiline])
			return
		}
	}
}

func (v *validator) released() {
	u := v.u
	if u.Released == "" {
		v.add("released", "required: the release date as YYYY-MM-DD")
		return
	}
	if !dateRE().MatchString(u.Released) {
		v.add("released", "%q is not a date; write YYYY-MM-DD", u.Released)
		return
	}
	if _, err := time.Parse(time.DateOnly, u.Released); err != nil {
		v.add("released", "%q is not a valid calendar date (YYYY-MM-DD)", u.Released)
	}
}

func (v *validator) cves() {
	seen := map[string]bool{}
	for i, c := range v.u.CVEs {
		f := "cves[" + strconv.Itoa(i) + "]"
		switch {
		case !cveRE().MatchString(c):
			v.add(f, "%q is not a CVE id; write CVE-YYYY-NNNN (four or more digits)", c)
		case seen[c]:
			v.add(f, "%s listed twice", c)
		}
		seen[c] = true
	}
}

func (v *validator) refs() {
	u := v.u
	in := map[string]map[string]bool{}
	for _, name := range refsFields {
		list := u.Supersedes
		if name == "requires" {
			list = u.Requires
		}
		seen := map[string]bool{}
		for i, id := range list {
			f := name + "[" + strconv.Itoa(i) + "]"
			switch {
			case !idRE().MatchString(id):
				v.add(f, "%q is not a valid update id (%s)", id, idValid)
			case id == u.ID:
				v.add(f, "the update cannot list itself")
			case seen[id]:
				v.add(f, "%s listed twice", id)
			case name == "requires" && in["supersedes"][id]:
				v.add(f, "%s is also in supersedes; an update cannot both require and replace another", id)
			}
			seen[id] = true
		}
		in[name] = seen
	}
}

func (v *validator) installer() {
	in := v.u.Installer
	switch in.Type {
	case "":
		v.add("installer.type", "required: one of %s", strings.Join(installerTypes, ", "))
		return
	case InstallerDeb, InstallerArchive, InstallerLockdown:
	default:
		v.add("installer.type", "unknown installer %q (valid: %s)", in.Type, strings.Join(installerTypes, ", "))
		return
	}
	if in.Type == InstallerArchive {
		switch {
		case in.Prefix == "":
			v.add("installer.prefix", "required for installer type archive: the absolute directory it extracts under, such as /opt/example")
		case len(in.Prefix) > maxPrefix || strings.ContainsAny(in.Prefix, "\x00\n\r"):
			v.add("installer.prefix", "not a usable path; write an absolute directory such as /opt/example")
		case !path.IsAbs(in.Prefix) || path.Clean(in.Prefix) != in.Prefix:
			v.add("installer.prefix", "%q must be an absolute, clean path (no '..', '.', '//' or trailing '/'), such as %q", in.Prefix, path.Clean("/"+in.Prefix))
		}
	} else if in.Prefix != "" {
		v.add("installer.prefix", "only for installer type archive; remove it")
	}
	if in.Type == InstallerLockdown {
		switch {
		case in.Profile == "":
			v.add("installer.profile", "required for installer type lockdown: a profile name such as web-server")
		case !profileRE().MatchString(in.Profile):
			v.add("installer.profile", "%q is not a profile name (lowercase letters, digits, '-' and '_')", in.Profile)
		}
	} else if in.Profile != "" {
		v.add("installer.profile", "only for installer type lockdown; remove it")
	}
}

// payloadDeb checks the package fields the repository tool read from a .deb.
func (v *validator) payloadDeb(f string, d *PayloadDeb) {
	if v.u.Installer.Type != InstallerDeb {
		v.add(f, "only payloads of installer type deb carry package fields")
	}
	if !debNameRE().MatchString(d.Package) {
		v.add(f+".package", "%q is not a Debian package name (lowercase letters, digits, '+', '-', '.')", d.Package)
	}
	if _, err := parseDebVersion(d.Version); err != nil || len(d.Version) > 200 {
		v.add(f+".version", "%q is not a Debian version: %v", d.Version, err)
	}
	if !archRE().MatchString(d.Architecture) {
		v.add(f+".architecture", "%q is not a Debian architecture (such as all or amd64)", d.Architecture)
	}
}

func (v *validator) payloads() {
	u := v.u
	switch u.Installer.Type {
	case InstallerDeb, InstallerArchive:
		if len(u.Payloads) == 0 {
			v.add("payloads", "installer type %s needs at least one payload file", u.Installer.Type)
		}
	case InstallerLockdown:
		if len(u.Payloads) > 0 {
			v.add("payloads", "installer type lockdown takes no payloads; remove them")
		}
	}
	seen := map[string]bool{}
	for i, p := range u.Payloads {
		pf := "payloads[" + strconv.Itoa(i) + "]"
		switch {
		case p.Length < 0:
			v.add(pf+".length", "%d is negative; the payload's size in bytes", p.Length)
		case p.SHA256 != "" && !sha256RE().MatchString(p.SHA256):
			v.add(pf+".sha256", "%q is not a SHA-256 digest (64 lowercase hex digits)", p.SHA256)
		case p.SHA256 == "" && p.Length != 0:
			v.add(pf+".sha256", "required with length: both are set by the repository tool, or neither")
		}
		if p.Deb != nil {
			v.payloadDeb(pf+".deb", p.Deb)
		}
		f := pf + ".file"
		switch {
		case p.File == "":
			v.add(f, "required: the payload's file name")
		case !payloadRE().MatchString(p.File) || strings.Contains(p.File, ".."):
			v.add(f, "%q is not a plain file name (letters, digits, '.', '_', '+', '~', '-'; no '/' or '..'; at most 255)", p.File)
		case seen[p.File]:
			v.add(f, "%s listed twice", p.File)
		}
		seen[p.File] = true
	}
}

func (v *validator) rule(r *Rule, p string, depth int) {
	if depth > MaxRuleDepth {
		v.add(p, "rules nested deeper than %d levels", MaxRuleDepth)
		return
	}
	switch n := r.members(); {
	case n == 0:
		v.add(p, "a rule needs exactly one condition (valid: %s)", strings.Join(ruleKeys, ", "))
		return
	case n > 1:
		v.add(p, "a rule has exactly one condition; combine several with and")
		return
	}
	switch {
	case r.OS != nil:
		f := p + ".os"
		switch {
		case r.OS.ID == "":
			v.add(f+".id", "required: the ID of /etc/os-release, such as debian")
		case !osValueRE().MatchString(r.OS.ID):
			v.add(f+".id", "%q is not an os-release ID (lowercase letters, digits, '.', '_', '-')", r.OS.ID)
		}
		if r.OS.VersionID != "" && !osValueRE().MatchString(r.OS.VersionID) {
			v.add(f+".version_id", "%q is not an os-release VERSION_ID (lowercase letters, digits, '.', '_', '-'), such as \"12\"", r.OS.VersionID)
		}
	case r.Arch != "":
		if !archRE().MatchString(r.Arch) {
			v.add(p+".arch", "%q is not a dpkg architecture (such as amd64, arm64, all)", r.Arch)
		}
	case r.Deb != nil:
		v.deb(r.Deb, p+".deb")
	case r.UpdateInstalled != "":
		if !idRE().MatchString(r.UpdateInstalled) {
			v.add(p+".update_installed", "%q is not a valid update id (%s)", r.UpdateInstalled, idValid)
		}
	case r.And != nil || r.Or != nil:
		name, list := "and", r.And
		if r.Or != nil {
			name, list = "or", r.Or
		}
		if len(list) == 0 {
			v.add(p+"."+name, "must list at least one rule")
		}
		for i := range list {
			v.rule(&list[i], p+"."+name+"["+strconv.Itoa(i)+"]", depth+1)
		}
	default:
		v.rule(r.Not, p+".not", depth+1)
	}
}

func (v *validator) deb(d *DebRule, p string) {
	switch {
	case d.Package == "":
		v.add(p+".package", "required: a Debian package name such as libssl3")
	case !debNameRE().MatchString(d.Package):
		v.add(p+".package", "%q is not a Debian package name (lowercase letters, digits, '+', '-', '.'; at least two)", d.Package)
	}
	anyBound := false
	for _, b := range d.bounds() {
		if b.value == "" {
			continue
		}
		anyBound = true
		if _, err := parseDebVersion(b.value); err != nil {
			v.add(p+"."+b.field, "%q is not a Debian version: %v (such as 3.0.15-1~deb12u1)", b.value, err)
		}
	}
	switch {
	case d.Installed == nil && !anyBound:
		v.add(p, "needs installed: true|false or a version bound (version_lt, version_le, version_eq, version_ge, version_gt)")
	case d.Installed != nil && !*d.Installed && anyBound:
		v.add(p+".installed", "installed: false cannot be combined with version bounds")
	}
}
