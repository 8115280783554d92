package lockdown

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"
)

// maxRuleFileSize caps a rule or profile file read from disk.
const maxRuleFileSize = 1 << 20

// Severity is how much a failing rule matters; it weights the score.
type Severity string

// Severities, in XCCDF's vocabulary.
const (
	SeverityLow    Severity = "low"
	SeverityMedium Severity = "medium"
	SeverityHigh   Severity = "high"
)

// Weight is the severity's weight in the score.
func (s Severity) Weight() int {
	switch s {
	case SeverityHigh:
		return 3
	case SeverityMedium:
		return 2
	default:
		return 1
	}
}

// Disruption is how likely applying a rule is to break something a user
// relies on.
type Disruption string

// Disruption levels.
const (
	DisruptionLow    Disruption = "low"
	DisruptionMedium Disruption = "medium"
	DisruptionHigh   Disruption = "high"
)

// References ties a rule to the benchmarks that describe it.
type References struct {
	CIS []string `yaml:"cis" json:"cis,omitempty"`
	SSG []string `yaml:"ssg" json:"ssg,omitempty"`
	// CISNginx are items of the CIS NGINX Benchmark (v2.1.0), for the
	// nginx rules, which neither CIS Debian 12 nor SSG covers.
	CISNginx []string `yaml:"cis_nginx" json:"cis_nginx,omitempty"`
	// Lynis are the ids of the Lynis tests (3.0.8) that check the same
	// thing, for rules that neither CIS Debian 12 nor SSG covers and as
	// a cross-reference where they do.
	Lynis []string `yaml:"lynis" json:"lynis,omitempty"`
}

// Rule is one hardening check with the fix that makes it pass.
type Rule struct {
	ID         string            `yaml:"id" json:"id"`
	Title      string            `yaml:"title" json:"title"`
	Rationale  string            `yaml:"rationale" json:"rationale"`
	Severity   Severity          `yaml:"severity" json:"severity"`
	References References        `yaml:"references" json:"references"`
	Profiles   []string          `yaml:"profiles" json:"profiles"`
	Disruption Disruption        `yaml:"disruption" json:"disruption"`
	Reboot     bool              `yaml:"reboot" json:"reboot,omitempty"`
	Reload     string            `yaml:"reload" json:"reload,omitempty"`
	Vars       map[string]string `yaml:"vars" json:"vars,omitempty"`
	Resource   yaml.Node         `yaml:"resource" json:"-"`

	// Source is where the rule was defined, "file:line".
	Source string `yaml:"-" json:"source"`
	// Type is the resource type.
	Type string `yaml:"-" json:"type"`
}

// Reloads a rule may ask for after it is applied to the running system.
var validReloads = map[string]bool{"": true, "ssh": true, "nginx": true, "sysctl": true, "systemd": true}

// Waiver accepts a failing rule for a reason until a date.
type Waiver struct {
	Rule    string `yaml:"rule" json:"rule"`
	Reason  string `yaml:"reason" json:"reason"`
	Expires string `yaml:"expires" json:"expires"`

	expires time.Time
}

// ExpiresAt is the first instant the waiver no longer holds (the day after
// its expiry date, UTC).
func (w Waiver) ExpiresAt() time.Time { return w.expires }

// Profile is a named set of rules with variable values and waivers.
type Profile struct {
	Name        string            `yaml:"name" json:"name"`
	Title       string            `yaml:"title" json:"title"`
	Description string            `yaml:"description" json:"description"`
	Extends     string            `yaml:"extends" json:"extends,omitempty"`
	Include     []string          `yaml:"include" json:"include,omitempty"`
	Exclude     []string          `yaml:"exclude" json:"exclude,omitempty"`
	Vars        map[string]string `yaml:"vars" json:"vars,omitempty"`
	Waivers     []Waiver          `yaml:"waivers" json:"waivers,omitempty"`

	Source string `yaml:"-" json:"source"`
}

// ruleFile is the shape of one YAML file of rules and profiles.
type ruleFile struct {
	Rules    []yaml.Node `yaml:"rules"`
	Profiles []yaml.Node `yaml:"profiles"`
}

// ParseError is a rule or profile file that cannot be used, with the place
// and the field at fault.
type ParseError struct {
	File  string
	Line  int
	Field string
	Err   error
}

func (e *ParseError) Error() string {
	var sb strings.Builder
	sb.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&sb, ":%d", e.Line)
	}
	if e.Field != "" {
		fmt.Fprintf(&sb, ": field %q", e.Field)
	}
	fmt.Fprintf(&sb, ": %v", e.Err)
	return sb.String()
}

func (e *ParseError) Unwrap() error { return e.Err }

// ErrUnknownField is wrapped by a ParseError for a field the schema does not
// have.
var ErrUnknownField = errors.New("unknown field")

// ErrUnknownType is wrapped by a ParseError for a resource type that does not
// exist.
var ErrUnknownType = errors.New("unknown resource type")

var idPattern = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,99}$`) })

// IsID reports whether s is a valid rule or profile id.
func IsID(s string) bool { return idPattern().MatchString(s) }

// Catalog holds every known rule and profile.
type Catalog struct {
	rules    map[string]*Rule
	profiles map[string]*Profile
	types    map[string]func() Resource
}

// NewCatalog returns an empty catalog that knows the given resource types
// (normally ResourceTypes()).
func NewCatalog(types map[string]func() Resource) *Catalog {
	return &Catalog{rules: map[string]*Rule{}, profiles: map[string]*Profile{}, types: types}
}

// LoadFS adds every *.yaml file in the root of fsys, in name order. A rule or
// profile with the id of one already loaded replaces it.
func (c *Catalog) LoadFS(fsys fs.FS, label string) error {
	names, err := fs.Glob(fsys, "*.yaml")
	if err != nil {
		return fmt.Errorf("list rules in %s: %w", label, err)
	}
	sort.Strings(names)
	for _, name := range names {
		f, err := fsys.Open(name)
		if err != nil {
			return fmt.Errorf("open rules: %w", err)
		}
		b, err := io.ReadAll(io.LimitReader(f, maxRuleFileSize+1))
		f.Close()
		if err != nil {
			return fmt.Errorf("read %s: %w", path.Join(label, name), err)
		}
		if len(b) > maxRuleFileSize {
			return &ParseError{File: path.Join(label, name), Err: fmt.Errorf("file is larger than %d bytes", maxRuleFileSize)}
		}
		if err := c.Parse(path.Join(label, name), b); err != nil {
			return err
		}
	}
	return nil
}

// Parse adds the rules and profiles of one YAML file. Unknown fields, unknown
// resource types and bad values are refused with the file, line and field.
func (c *Catalog) Parse(file string, data []byte) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return &ParseError{File: file, Line: yamlErrLine(err), Err: fmt.Errorf("not valid YAML: %w", err)}
	}
	if doc.Kind == 0 {
		return nil
	}
	var rf ruleFile
	if err := strictDecode(file, &doc, &rf); err != nil {
		return err
	}
	newRules := map[string]*Rule{}
	for i := range rf.Rules {
		r, err := c.parseRule(file, &rf.Rules[i])
		if err != nil {
			return err
		}
		if _, dup := newRules[r.ID]; dup {
			return &ParseError{File: file, Line: rf.Rules[i].Line, Field: "id", Err: fmt.Errorf("rule %q is defined twice in this file", r.ID)}
		}
		newRules[r.ID] = r
	}
	newProfiles := map[string]*Profile{}
	for i := range rf.Profiles {
		p, err := parseProfile(file, &rf.Profiles[i])
		if err != nil {
			return err
		}
		newProfiles[p.Name] = p
	}
	for id, r := range newRules {
		c.rules[id] = r
	}
	for name, p := range newProfiles {
		c.profiles[name] = p
	}
	return nil
}

var yamlLine = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`line (\d+)`) })

func yamlErrLine(err error) int {
	m := yamlLine().FindStringSubmatch(err.Error())
	if m == nil {
		return 0
	}
	n := 0
	fmt.Sscan(m[1], &n)
	return n
}

func (c *Catalog) parseRule(file string, n *yaml.Node) (*Rule, error) {
	var r Rule
	if err := strictDecode(file, n, &r); err != nil {
		return nil, err
	}
	r.Source = fmt.Sprintf("%s:%d", file, n.Line)
	bad := func(field string, line int, format string, args ...any) error {
		return &ParseError{File: file, Line: line, Field: field, Err: fmt.Errorf(format, args...)}
	}
	if !idPattern().MatchString(r.ID) {
		return nil, bad("id", fieldLine(n, "id"), "rule id %q must be 1-100 of a-z 0-9 . _ - starting with a letter or digit", r.ID)
	}
	if r.Title == "" {
		return nil, bad("title", n.Line, "rule %s has no title", r.ID)
	}
	if r.Rationale == "" {
		return nil, bad("rationale", n.Line, "rule %s has no rationale", r.ID)
	}
	switch r.Severity {
	case SeverityLow, SeverityMedium, SeverityHigh:
	default:
		return nil, bad("severity", fieldLine(n, "severity"), "severity %q is not one of low, medium, high", r.Severity)
	}
	switch r.Disruption {
	case DisruptionLow, DisruptionMedium, DisruptionHigh:
	default:
		return nil, bad("disruption", fieldLine(n, "disruption"), "disruption %q is not one of low, medium, high", r.Disruption)
	}
	if !validReloads[r.Reload] {
		return nil, bad("reload", fieldLine(n, "reload"), "reload %q is not one of ssh, nginx, sysctl, systemd (or empty)", r.Reload)
	}
	for _, p := range r.Profiles {
		if !idPattern().MatchString(p) {
			return nil, bad("profiles", fieldLine(n, "profiles"), "profile name %q must be of a-z 0-9 . _ -", p)
		}
	}
	if r.Resource.Kind != yaml.MappingNode {
		return nil, bad("resource", n.Line, "rule %s needs a resource: a mapping with a type and its parameters", r.ID)
	}
	typeName := ""
	for i := 0; i+1 < len(r.Resource.Content); i += 2 {
		if r.Resource.Content[i].Value == "type" {
			typeName = r.Resource.Content[i+1].Value
		}
	}
	if _, ok := c.types[typeName]; !ok {
		return nil, &ParseError{File: file, Line: fieldLine(&r.Resource, "type"), Field: "resource.type",
			Err: fmt.Errorf("%w %q; valid types: %s", ErrUnknownType, typeName, strings.Join(c.TypeNames(), ", "))}
	}
	r.Type = typeName
	if _, err := c.instantiate(file, &r, r.Vars); err != nil {
		return nil, err
	}
	return &r, nil
}

// TypeNames lists the resource types the catalog knows, sorted.
func (c *Catalog) TypeNames() []string {
	var names []string
	for n := range c.types {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

var varRef = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`\{\{\s*([a-z0-9_]+)\s*\}\}`) })

// instantiate decodes a rule's resource with variable references replaced.
func (c *Catalog) instantiate(file string, r *Rule, vars map[string]string) (Resource, error) {
	node := cloneNode(&r.Resource)
	var missing []string
	substitute(node, func(s string) string {
		return varRef().ReplaceAllStringFunc(s, func(m string) string {
			name := varRef().FindStringSubmatch(m)[1]
			v, ok := vars[name]
			if !ok {
				missing = append(missing, name)
			}
			return v
		})
	})
	if len(missing) > 0 {
		return nil, &ParseError{File: file, Line: r.Resource.Line, Field: "resource", Err: fmt.Errorf("rule %s uses variable %q with no default in its vars", r.ID, missing[0])}
	}
	res := c.types[r.Type]()
	if err := strictDecode(file, node, res); err != nil {
		var pe *ParseError
		if errors.As(err, &pe) && pe.Field != "" {
			pe.Field = "resource." + pe.Field
		}
		return nil, err
	}
	if err := res.Validate(); err != nil {
		return nil, &ParseError{File: file, Line: r.Resource.Line, Field: "resource", Err: fmt.Errorf("rule %s: %w", r.ID, err)}
	}
	return res, nil
}

func cloneNode(n *yaml.Node) *yaml.Node {
	c := *n
	c.Content = make([]*yaml.Node, len(n.Content))
	for i, k := range n.Content {
		c.Content[i] = cloneNode(k)
	}
	return &c
}

func substitute(n *yaml.Node, f func(string) string) {
	if n.Kind == yaml.ScalarNode {
		if v := f(n.Value); v != n.Value {
			// Let the substituted text resolve as YAML would (a number for
			// max: "{{var}}").
			n.Value, n.Tag, n.Style = v, "", 0
		}
	}
	for _, k := range n.Content {
		substitute(k, f)
	}
}

func fieldLine(n *yaml.Node, field string) int {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == field {
			return n.Content[i].Line
		}
	}
	return n.Line
}

func parseProfile(file string, n *yaml.Node) (*Profile, error) {
	var p Profile
	if err := strictDecode(file, n, &p); err != nil {
		return nil, err
	}
	p.Source = fmt.Sprintf("%s:%d", file, n.Line)
	if !idPattern().MatchString(p.Name) {
		return nil, &ParseError{File: file, Line: fieldLine(n, "name"), Field: "name", Err: fmt.Errorf("profile name %q must be 1-100 of a-z 0-9 . _ -", p.Name)}
	}
	for i := range p.Waivers {
		w := &p.Waivers[i]
		line := n.Line
		if wn := findField(n, "waivers"); wn != nil && i < len(wn.Content) {
			line = wn.Content[i].Line
		}
		if w.Rule == "" {
			return nil, &ParseError{File: file, Line: line, Field: "waivers.rule", Err: errors.New("a waiver names the rule it waives")}
		}
		if strings.TrimSpace(w.Reason) == "" {
			return nil, &ParseError{File: file, Line: line, Field: "waivers.reason", Err: fmt.Errorf("the waiver of %s needs a reason", w.Rule)}
		}
		d, err := time.Parse("2006-01-02", w.Expires)
		if err != nil {
			return nil, &ParseError{File: file, Line: line, Field: "waivers.expires", Err: fmt.Errorf("the waiver of %s needs an expiry date YYYY-MM-DD, not %q", w.Rule, w.Expires)}
		}
		w.expires = d.AddDate(0, 0, 1)
	}
	return &p, nil
}

func findField(n *yaml.Node, field string) *yaml.Node {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == field {
			return n.Content[i+1]
		}
	}
	return nil
}

// strictDecode decodes n into v after checking that every mapping key names
// a field of v's struct types, so that a typo is an error with its line
// rather than a silently ignored setting.
func strictDecode(file string, n *yaml.Node, v any) error {
	if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	if err := checkFields(file, n, reflect.TypeOf(v), ""); err != nil {
		return err
	}
	if err := n.Decode(v); err != nil {
		return &ParseError{File: file, Line: yamlErrLine(err), Err: err}
	}
	return nil
}

func checkFields(file string, n *yaml.Node, t reflect.Type, prefix string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == reflect.TypeOf(yaml.Node{}) {
		return nil
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return &ParseError{File: file, Line: n.Line, Field: strings.TrimSuffix(prefix, "."), Err: fmt.Errorf("expected a mapping, found %s", nodeKind(n))}
		}
		fields := map[string]reflect.StructField{}
		structFields(t, fields)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			f, ok := fields[k.Value]
			if !ok {
				var valid []string
				for name := range fields {
					valid = append(valid, name)
				}
				sort.Strings(valid)
				return &ParseError{File: file, Line: k.Line, Field: prefix + k.Value,
					Err: fmt.Errorf("%w; valid fields here: %s", ErrUnknownField, strings.Join(valid, ", "))}
			}
			if err := checkFields(file, n.Content[i+1], f.Type, prefix+k.Value+"."); err != nil {
				return err
			}
		}
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return nil
		}
		if n.Kind == yaml.SequenceNode {
			for _, e := range n.Content {
				if err := checkFields(file, e, t.Elem(), prefix); err != nil {
					return err
				}
			}
		}
	case reflect.Map:
		if n.Kind == yaml.MappingNode {
			for i := 1; i < len(n.Content); i += 2 {
				if err := checkFields(file, n.Content[i], t.Elem(), prefix+n.Content[i-1].Value+"."); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// structFields collects the YAML names of t's fields, descending into
// inline structs.
func structFields(t reflect.Type, fields map[string]reflect.StructField) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if strings.Contains(opts, "inline") && f.Type.Kind() == reflect.Struct {
			structFields(f.Type, fields)
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		fields[name] = f
	}
}

func nodeKind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.ScalarNode:
		return fmt.Sprintf("the value %q", n.Value)
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	}
	return "nothing"
}

// Rule returns the rule with the given id.
func (c *Catalog) Rule(id string) (*Rule, bool) {
	r, ok := c.rules[id]
	return r, ok
}

// Rules returns every rule, sorted by id.
func (c *Catalog) Rules() []*Rule {
	out := make([]*Rule, 0, len(c.rules))
	for _, r := range c.rules {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Profile returns the profile with the given name.
func (c *Catalog) Profile(name string) (*Profile, bool) {
	p, ok := c.profiles[name]
	return p, ok
}

// Profiles returns every profile, sorted by name.
func (c *Catalog) Profiles() []*Profile {
	out := make([]*Profile, 0, len(c.profiles))
	for _, p := range c.profiles {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// ErrUnknownProfile is returned for a profile name that is not defined.
var ErrUnknownProfile = errors.New("unknown profile")

// Selected is one rule of a profile, ready to run.
type Selected struct {
	Rule     *Rule
	Resource Resource
	// Waiver is the waiver in force for the rule, if any.
	Waiver *Waiver
	// ExpiredWaiver is a waiver the profile has for the rule that has expired
	// and is therefore ignored.
	ExpiredWaiver *Waiver
}

// Selection is a profile resolved against the catalog at a point in time.
type Selection struct {
	Profile *Profile
	Rules   []Selected
}

// Select resolves a profile: its rules (its own, those of what it extends,
// less its exclusions), variable values and the waivers in force at now.
func (c *Catalog) Select(name string, now time.Time) (*Selection, error) {
	p, ok := c.profiles[name]
	if !ok {
		var names []string
		for n := range c.profiles {
			names = append(names, n)
		}
		sort.Strings(names)
		return nil, fmt.Errorf("%w %q; known profiles: %s", ErrUnknownProfile, name, strings.Join(names, ", "))
	}
	ids, vars, err := c.members(p, map[string]bool{})
	if err != nil {
		return nil, err
	}
	waivers := map[string]*Waiver{}
	for q := p; q != nil; q = c.profiles[q.Extends] {
		for i := range q.Waivers {
			w := &q.Waivers[i]
			if _, seen := waivers[w.Rule]; !seen {
				waivers[w.Rule] = w
			}
		}
		if q.Extends == "" {
			break
		}
	}
	for id := range waivers {
		if _, ok := c.rules[id]; !ok {
			return nil, fmt.Errorf("profile %s (%s) waives %q, which is not a known rule", p.Name, p.Source, id)
		}
	}
	sel := &Selection{Profile: p}
	sorted := make([]string, 0, len(ids))
	for id := range ids {
		sorted = append(sorted, id)
	}
	sort.Strings(sorted)
	for _, id := range sorted {
		r := c.rules[id]
		rv := map[string]string{}
		for k, v := range r.Vars {
			rv[k] = v
		}
		for k, v := range vars {
			if _, ok := r.Vars[k]; ok {
				rv[k] = v
			}
		}
		res, err := c.instantiate(r.Source, r, rv)
		if err != nil {
			return nil, fmt.Errorf("profile %s: %w", p.Name, err)
		}
		s := Selected{Rule: r, Resource: res}
		if w, ok := waivers[id]; ok {
			if now.Before(w.expires) {
				s.Waiver = w
			} else {
				s.ExpiredWaiver = w
			}
		}
		sel.Rules = append(sel.Rules, s)
	}
	return sel, nil
}

// members computes a profile's rule ids and variables, following extends.
func (c *Catalog) members(p *Profile, visiting map[string]bool) (map[string]bool, map[string]string, error) {
	if visiting[p.Name] {
		return nil, nil, fmt.Errorf("profile %s (%s): extends forms a cycle", p.Name, p.Source)
	}
	visiting[p.Name] = true
	ids := map[string]bool{}
	vars := map[string]string{}
	if p.Extends != "" {
		parent, ok := c.profiles[p.Extends]
		if !ok {
			return nil, nil, fmt.Errorf("profile %s (%s) extends %q: %w", p.Name, p.Source, p.Extends, ErrUnknownProfile)
		}
		pids, pvars, err := c.members(parent, visiting)
		if err != nil {
			return nil, nil, err
		}
		ids, vars = pids, pvars
	}
	for _, r := range c.rules {
		for _, name := range r.Profiles {
			if name == p.Name {
				ids[r.ID] = true
			}
		}
	}
	for _, id := range p.Include {
		if _, ok := c.rules[id]; !ok {
			return nil, nil, fmt.Errorf("profile %s (%s) includes %q, which is not a known rule", p.Name, p.Source, id)
		}
		ids[id] = true
	}
	for _, id := range p.Exclude {
		if _, ok := c.rules[id]; !ok {
			return nil, nil, fmt.Errorf("profile %s (%s) excludes %q, which is not a known rule", p.Name, p.Source, id)
		}
		delete(ids, id)
	}
	for k, v := range p.Vars {
		known := false
		for _, r := range c.rules {
			if _, ok := r.Vars[k]; ok {
				known = true
				break
			}
		}
		if !known {
			return nil, nil, fmt.Errorf("profile %s (%s) sets variable %q, which no rule uses", p.Name, p.Source, k)
		}
		vars[k] = v
	}
	return ids, vars, nil
}

// Instantiate decodes a rule's resource with its default variables and vars
// overriding them.
func (c *Catalog) Instantiate(r *Rule, vars map[string]string) (Resource, error) {
	rv := map[string]string{}
	for k, v := range r.Vars {
		rv[k] = v
	}
	for k, v := range vars {
		rv[k] = v
	}
	return c.instantiate(r.Source, r, rv)
}
