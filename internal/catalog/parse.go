package catalog

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"
)

// maxJSONDepth caps the nesting of a JSON document before it is decoded:
// rules nest at most MaxRuleDepth levels and each adds two (rule object and
// and/or list), plus the few levels around applies_to.
const maxJSONDepth = 2*MaxRuleDepth + 8

// ParseYAML reads an authored update (see DESIGN.md, "Update metadata"),
// strictly: unknown fields, duplicate keys, aliases, tags other than plain
// scalars, more than one document and the repository-set fields revision
// and withdrawn are refused. It then validates the update. Every problem
// found is returned (errors.Join of *FieldError sorted by line), each naming
// filename, line and field.
func ParseYAML(filename string, data []byte) (*Update, error) {
	if len(data) > MaxYAMLSize {
		return nil, fmt.Errorf("%s: %d bytes, limit %d: %w", filename, len(data), MaxYAMLSize, ErrTooLarge)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &FieldError{File: filename, Msg: "empty document; expected a mapping with id, title, …"}
		}
		return nil, yamlSyntaxError(filename, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, yamlSyntaxError(filename, err)
		}
		return nil, &FieldError{File: filename, Line: extra.Line, Msg: "more than one YAML document; expected exactly one"}
	}
	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) != 1 {
			return nil, &FieldError{File: filename, Msg: "empty document; expected a mapping with id, title, …"}
		}
		root = root.Content[0]
	}
	d := &decoder{file: filename, yaml: true, lines: map[string]int{}, bad: map[string]bool{}}
	return d.finish(d.update(root))
}

var yamlLineRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^yaml: line (\d+): (.*)$`) })

func yamlSyntaxError(filename string, err error) error {
	msg := err.Error()
	if m := yamlLineRE().FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &FieldError{File: filename, Line: line, Msg: "YAML syntax: " + m[2]}
	}
	return &FieldError{File: filename, Msg: "YAML syntax: " + strings.TrimPrefix(msg, "yaml: ")}
}

// ParseJSON reads update.json as served by a repository, strictly: unknown
// or differently cased fields, duplicate keys, wrong types, trailing data and
// documents nested deeper than any valid update are refused. It then
// validates the update.
func ParseJSON(data []byte) (*Update, error) {
	if len(data) > MaxJSONSize {
		return nil, fmt.Errorf("update.json: %d bytes, limit %d: %w", len(data), MaxJSONSize, ErrTooLarge)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	root, err := jsonNode(dec, 0)
	if err != nil {
		return nil, &FieldError{Msg: "JSON syntax: " + err.Error()}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, &FieldError{Msg: "JSON syntax: data after the update object"}
	}
	d := &decoder{lines: map[string]int{}, bad: map[string]bool{}}
	return d.finish(d.update(root))
}

// jsonNode reads one JSON value from dec as a yaml.Node, so that both forms go
// through the same strict field walk. Object keys keep their exact spelling
// (encoding/json would match "ID" to the field id).
func jsonNode(dec *json.Decoder, depth int) (*yaml.Node, error) {
	if depth > maxJSONDepth {
		return nil, fmt.Errorf("nested deeper than %d levels", maxJSONDepth)
	}
	tok, err := dec.Token()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, io.ErrUnexpectedEOF
		}
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				key, ok := kt.(string)
				if !ok {
					return nil, fmt.Errorf("object key %v is not a string", kt)
				}
				v, err := jsonNode(dec, depth+1)
				if err != nil {
					return nil, err
				}
				n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key}, v)
			}
			if _, err := dec.Token(); err != nil { // '}'
				return nil, err
			}
			return n, nil
		case '[':
			n := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
			for dec.More() {
				v, err := jsonNode(dec, depth+1)
				if err != nil {
					return nil, err
				}
				n.Content = append(n.Content, v)
			}
			if _, err := dec.Token(); err != nil { // ']'
				return nil, err
			}
			return n, nil
		}
		return nil, fmt.Errorf("unexpected %v", t)
	case string:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: t}, nil
	case json.Number:
		if _, err := strconv.ParseInt(t.String(), 10, 64); err == nil {
			return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: t.String()}, nil
		}
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!float", Value: t.String()}, nil
	case bool:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: strconv.FormatBool(t)}, nil
	case nil:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null"}, nil
	}
	return nil, fmt.Errorf("unexpected token %v", tok)
}

// JSON returns the update as update.json: deterministic bytes (the same
// Update always gives the same bytes), two-space indent, trailing newline.
// It refuses an update that does not pass Validate, so nothing invalid is
// ever signed.
func (u *Update) JSON() ([]byte, error) {
	if err := u.Validate(); err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(u, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode update %s: %w", u.ID, err)
	}
	return append(b, '\n'), nil
}

// decoder walks a yaml.Node tree (from YAML, or built from JSON by jsonNode)
// into an Update, recording field lines and collecting every problem.
type decoder struct {
	file    string
	yaml    bool // authored YAML: numbers allowed for strings, repository fields refused
	lines   map[string]int
	bad     map[string]bool // fields with a type error; validation skips them
	errs    []*FieldError
	dropped int // problems beyond maxProblems, counted but not formatted
}

func (d *decoder) fail(n *yaml.Node, field, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	d.bad[field] = true
	if len(d.errs) >= maxProblems {
		d.dropped++
		return
	}
	d.errs = append(d.errs, &FieldError{File: d.file, Line: line, Field: field, Msg: fmt.Sprintf(format, args...)})
}

func (d *decoder) finish(u *Update) (*Update, error) {
	if u != nil {
		u.lines = d.lines
		errs, dropped := u.validate(d.file, d.bad)
		d.errs = append(d.errs, errs...)
		d.dropped += dropped
	}
	if len(d.errs) > 0 {
		return nil, joinFieldErrors(d.file, d.errs, d.dropped)
	}
	return u, nil
}

// kindName names a node's kind for messages.
func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return "null"
		case "!!bool":
			return "a boolean"
		case "!!int", "!!float":
			return "a number"
		case "!!str":
			return "a string"
		}
		return "a value tagged " + n.ShortTag()
	}
	return "nothing"
}

// fields walks a mapping node, calling set for each known key; unknown keys,
// duplicate keys and non-string keys are reported with the valid names.
func (d *decoder) fields(n *yaml.Node, path string, valid []string, set func(key string, v *yaml.Node, field string)) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, pathOr(path, "document"), "must be a mapping with keys %s, not %s", strings.Join(valid, ", "), kindName(n))
		return
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.ShortTag() != "!!str" {
			d.fail(k, pathOr(path, "document"), "keys must be plain strings, not %s (valid: %s)", kindName(k), strings.Join(valid, ", "))
			continue
		}
		field := joinPath(path, k.Value)
		if !contains(valid, k.Value) {
			d.fail(k, field, "unknown field (valid: %s)", strings.Join(valid, ", "))
			continue
		}
		if seen[k.Value] {
			d.fail(k, field, "duplicate field; write it once")
			continue
		}
		seen[k.Value] = true
		d.lines[field] = k.Line
		if v.Kind == yaml.AliasNode || v.Anchor != "" {
			d.fail(v, field, "YAML anchors and aliases are not allowed; write the value out")
			continue
		}
		set(k.Value, v, field)
	}
}

func pathOr(path, alt string) string {
	if path == "" {
		return alt
	}
	return path
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// str reads a string scalar. In YAML a plain number or date is taken as the
// text written (version_id: 12 is "12"); in JSON only strings are strings.
func (d *decoder) str(n *yaml.Node, field string) string {
	if n.Kind == yaml.ScalarNode {
		switch n.ShortTag() {
		case "!!str":
			return n.Value
		case "!!int", "!!float", "!!timestamp":
			if d.yaml {
				return n.Value
			}
		}
	}
	d.fail(n, field, "must be a string, not %s", kindName(n))
	return ""
}

func (d *decoder) boolean(n *yaml.Node, field string) bool {
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!bool" {
		var b bool
		if err := n.Decode(&b); err == nil {
			return b
		}
	}
	d.fail(n, field, "must be true or false, not %s", kindName(n))
	return false
}

func (d *decoder) integer(n *yaml.Node, field string) int {
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!int" {
		if v, err := strconv.Atoi(n.Value); err == nil {
			return v
		}
	}
	d.fail(n, field, "must be a whole number, not %s", kindName(n))
	return 0
}

// seq walks a list node, calling each with the element's path. An empty list
// is the same as an absent one.
func (d *decoder) seq(n *yaml.Node, field string, each func(i int, v *yaml.Node, path string)) {
	if n.Kind != yaml.SequenceNode {
		d.fail(n, field, "must be a list, not %s", kindName(n))
		return
	}
	for i, v := range n.Content {
		p := field + "[" + strconv.Itoa(i) + "]"
		d.lines[p] = v.Line
		if v.Kind == yaml.AliasNode || v.Anchor != "" {
			d.fail(v, p, "YAML anchors and aliases are not allowed; write the value out")
			continue
		}
		each(i, v, p)
	}
}

func (d *decoder) strs(n *yaml.Node, field string) []string {
	var out []string
	d.seq(n, field, func(_ int, v *yaml.Node, p string) {
		out = append(out, d.str(v, p))
	})
	return out
}

var (
	updateFields   = []string{"id", "revision", "withdrawn", "title", "advisory", "description", "product", "classification", "severity", "cves", "released", "supersedes", "requires", "reboot", "applies_to", "installer", "payloads", "uninstallable"}
	authoredFields = []string{"id", "title", "advisory", "description", "product", "classification", "severity", "cves", "released", "supersedes", "requires", "reboot", "applies_to", "installer", "payloads", "uninstallable"}
	installerKeys  = []string{"type", "prefix", "profile"}
	payloadKeys    = []string{"file", "length", "sha256", "deb"}
	payloadDebKeys = []string{"package", "version", "architecture"}
	authoredPload  = []string{"file"}
	ruleKeys       = []string{"os", "arch", "deb", "update_installed", "and", "or", "not"}
	osKeys         = []string{"id", "version_id"}
	debKeys        = []string{"package", "installed", "version_lt", "version_le", "version_eq", "version_ge", "version_gt"}
)

func (d *decoder) update(n *yaml.Node) *Update {
	u := &Update{}
	valid := updateFields
	if d.yaml {
		valid = authoredFields
	}
	if n.Kind != yaml.MappingNode {
		d.fail(n, "document", "must be a mapping with keys %s, not %s", strings.Join(valid, ", "), kindName(n))
		return nil
	}
	if d.yaml {
		d.refuseRepoFields(n, "", "revision", "withdrawn")
	}
	d.fields(n, "", valid, func(key string, v *yaml.Node, field string) {
		switch key {
		case "id":
			u.ID = d.str(v, field)
		case "revision":
			u.Revision = d.integer(v, field)
		case "withdrawn":
			u.Withdrawn = d.boolean(v, field)
		case "title":
			u.Title = d.str(v, field)
		case "advisory":
			u.Advisory = d.str(v, field)
		case "description":
			u.Description = d.str(v, field)
		case "product":
			u.Product = d.str(v, field)
		case "classification":
			u.Classification = Classification(d.str(v, field))
		case "severity":
			u.Severity = Severity(d.str(v, field))
		case "cves":
			u.CVEs = d.strs(v, field)
		case "released":
			u.Released = d.str(v, field)
		case "supersedes":
			u.Supersedes = d.strs(v, field)
		case "requires":
			u.Requires = d.strs(v, field)
		case "reboot":
			u.Reboot = Reboot(d.str(v, field))
		case "applies_to":
			d.seq(v, field, func(_ int, e *yaml.Node, p string) {
				u.AppliesTo = append(u.AppliesTo, d.rule(e, p, 1))
			})
		case "installer":
			d.fields(v, field, installerKeys, func(key string, v *yaml.Node, f string) {
				switch key {
				case "type":
					u.Installer.Type = d.str(v, f)
				case "prefix":
					u.Installer.Prefix = d.str(v, f)
				case "profile":
					u.Installer.Profile = d.str(v, f)
				}
			})
		case "payloads":
			d.seq(v, field, func(_ int, e *yaml.Node, p string) {
				var pl Payload
				keys := payloadKeys
				if d.yaml {
					keys = d.refuseRepoFields(e, p, "length", "sha256", "deb")
				}
				d.fields(e, p, keys, func(key string, v *yaml.Node, f string) {
					switch key {
					case "file":
						pl.File = d.str(v, f)
					case "length":
						pl.Length = int64(d.integer(v, f))
					case "sha256":
						pl.SHA256 = d.str(v, f)
					case "deb":
						pl.Deb = &PayloadDeb{}
						d.fields(v, f, payloadDebKeys, func(key string, v *yaml.Node, f string) {
							switch key {
							case "package":
								pl.Deb.Package = d.str(v, f)
							case "version":
								pl.Deb.Version = d.str(v, f)
							case "architecture":
								pl.Deb.Architecture = d.str(v, f)
							}
						})
					}
				})
				u.Payloads = append(u.Payloads, pl)
			})
		case "uninstallable":
			u.Uninstallable = d.boolean(v, field)
		}
	})
	return u
}

// refuseRepoFields reports and removes from mapping n the fields the
// repository tool sets, which authored YAML must not contain, and returns the
// keys YAML may use at that level.
func (d *decoder) refuseRepoFields(n *yaml.Node, path string, names ...string) []string {
	if n.Kind == yaml.MappingNode {
		kept := n.Content[:0:0]
		for i := 0; i+1 < len(n.Content); i += 2 {
			if k := n.Content[i]; k.Kind == yaml.ScalarNode && contains(names, k.Value) {
				d.fail(k, joinPath(path, k.Value), "set by the repository tool, never in authored YAML; remove it")
				continue
			}
			kept = append(kept, n.Content[i], n.Content[i+1])
		}
		n.Content = kept
	}
	if path == "" {
		return authoredFields
	}
	return authoredPload
}

func (d *decoder) rule(n *yaml.Node, path string, depth int) Rule {
	var r Rule
	if depth > MaxRuleDepth {
		d.fail(n, path, "rules nested deeper than %d levels", MaxRuleDepth)
		return r
	}
	if n.Kind == yaml.MappingNode && len(n.Content) != 2 {
		d.fail(n, path, "a rule has exactly one key (valid: %s), not %d; combine conditions with and", strings.Join(ruleKeys, ", "), len(n.Content)/2)
		return r
	}
	d.fields(n, path, ruleKeys, func(key string, v *yaml.Node, field string) {
		switch key {
		case "os":
			r.OS = &OSRule{}
			d.fields(v, field, osKeys, func(key string, v *yaml.Node, f string) {
				switch key {
				case "id":
					r.OS.ID = d.str(v, f)
				case "version_id":
					r.OS.VersionID = d.str(v, f)
				}
			})
		case "arch":
			r.Arch = d.str(v, field)
		case "deb":
			r.Deb = &DebRule{}
			d.fields(v, field, debKeys, func(key string, v *yaml.Node, f string) {
				switch key {
				case "package":
					r.Deb.Package = d.str(v, f)
				case "installed":
					b := d.boolean(v, f)
					r.Deb.Installed = &b
				case "version_lt":
					r.Deb.VersionLT = d.str(v, f)
				case "version_le":
					r.Deb.VersionLE = d.str(v, f)
				case "version_eq":
					r.Deb.VersionEQ = d.str(v, f)
				case "version_ge":
					r.Deb.VersionGE = d.str(v, f)
				case "version_gt":
					r.Deb.VersionGT = d.str(v, f)
				}
			})
		case "update_installed":
			r.UpdateInstalled = d.str(v, field)
		case "and", "or":
			list := []Rule{}
			d.seq(v, field, func(_ int, e *yaml.Node, p string) {
				list = append(list, d.rule(e, p, depth+1))
			})
			if key == "and" {
				r.And = list
			} else {
				r.Or = list
			}
		case "not":
			sub := d.rule(v, field, depth+1)
			r.Not = &sub
		}
	})
	return r
}
