// Package config layers a command's settings with koanf: defaults, then
// YAML files (a main file and its drop-ins, in order), then environment
// variables, then command-line flags, each layer overriding the keys it
// sets. One Table names every setting once: its key in the file, its flag,
// its variable, its default and its help; the flags are registered from it
// and the --help listing is printed from it.
//
// Every value is checked in the layer it comes from, so a bad value is
// refused with its source named: the file and key, the variable, or the
// flag. A key no setting has is refused with the file and the key named.
// It reads settings and nothing else: what a setting means (and checks
// that need several settings) stays with the command.
package config

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/providers/env/v2"
	"github.com/knadh/koanf/providers/posflag"
	"github.com/knadh/koanf/providers/rawbytes"
	"github.com/knadh/koanf/v2"
	"github.com/spf13/pflag"

	"github.com/bulwarkhq/bulwark/internal/capread"
	"github.com/bulwarkhq/bulwark/internal/duration"
)

// MaxFileSize caps a configuration file.
const MaxFileSize = 1 << 20

// Kind is the type of a setting's value.
type Kind int

// The kinds of settings, with the Go type Load gives their values.
const (
	String   Kind = iota // string
	List                 // []string: a YAML list; comma-separated in a variable or flag
	Duration             // time.Duration: 90m, 36h, 7d, 2w; 0 means none; never negative
	Int                  // int
	Float                // float64
	Bool                 // bool
	Pairs                // []any of {Fields[0]: name, Fields[1]: value}: NAME=VALUE in a flag (repeatable) or a variable (comma-separated)
	Map                  // map[string]any of name → value: a YAML mapping; NAME=VALUE as for Pairs
)

// Setting is one setting of a command.
type Setting struct {
	Key     string // the key in the YAML file; nested keys are dotted: "upstream.interval"
	Kind    Kind
	Flag    string // the command-line flag without "--"; "" for none
	Env     string // the environment variable; "" for none
	Default any    // of the Kind's Go type; nil for none
	Help    string // flag help: what it is and what values are valid
	// Fields are the YAML names of a Pairs item's name and value, e.g.
	// {"name", "dir"}.
	Fields [2]string
	// Check refuses a value (of the Kind's Go type), saying what would be
	// valid; nil accepts every value of the kind.
	Check func(any) error
	// Secret reports whether the value is a secret; a file that sets one
	// must be private (mode 0600).
	Secret func(any) bool
}

// Table is the settings of a command.
type Table []Setting

func (t Table) setting(key string) *Setting {
	for i := range t {
		if t[i].Key == key {
			return &t[i]
		}
	}
	return nil
}

// children lists the next key parts under prefix ("" for the top level).
func (t Table) children(prefix string) []string {
	var out []string
	for _, s := range t {
		rest := s.Key
		if prefix != "" {
			var ok bool
			if rest, ok = strings.CutPrefix(s.Key, prefix+"."); !ok {
				continue
			}
		}
		part, _, _ := strings.Cut(rest, ".")
		if !slices.Contains(out, part) {
			out = append(out, part)
		}
	}
	return out
}

// Default is the default of the setting key (nil for none); it panics
// when t has no such setting.
func (t Table) Default(key string) any {
	st := t.setting(key)
	if st == nil {
		panic("config: no setting " + key)
	}
	return st.Default
}

// Without is t less the settings with the given keys.
func (t Table) Without(keys ...string) Table {
	var out Table
	for _, s := range t {
		if !slices.Contains(keys, s.Key) {
			out = append(out, s)
		}
	}
	return out
}

// WithFlag is t with the setting key's flag named flag and its help set
// to help (when not empty), for a command that takes the setting under
// another name (`server migrate --to` for database).
func (t Table) WithFlag(key, flag, help string) Table {
	out := slices.Clone(t)
	for i := range out {
		if out[i].Key == key {
			out[i].Flag = flag
			if help != "" {
				out[i].Help = help
			}
		}
	}
	return out
}

// Register adds the flags of the settings with the given keys (every
// setting with a flag when none are given) to fs, with their defaults
// and help.
func (t Table) Register(fs *pflag.FlagSet, keys ...string) {
	for _, s := range t {
		if s.Flag == "" || (len(keys) > 0 && !slices.Contains(keys, s.Key)) {
			continue
		}
		switch s.Kind {
		case String:
			def, _ := s.Default.(string)
			fs.String(s.Flag, def, s.Help)
		case List:
			def, _ := s.Default.([]string)
			fs.StringSlice(s.Flag, def, s.Help)
		case Pairs, Map:
			fs.StringArray(s.Flag, nil, s.Help)
		case Duration:
			def, _ := s.Default.(time.Duration)
			d := def
			fs.Var(durationFlag{&d}, s.Flag, s.Help)
		case Int:
			def, _ := s.Default.(int)
			fs.Int(s.Flag, def, s.Help)
		case Float:
			def, _ := s.Default.(float64)
			fs.Float64(s.Flag, def, s.Help)
		case Bool:
			def, _ := s.Default.(bool)
			fs.Bool(s.Flag, def, s.Help)
		}
	}
}

// durationFlag is a duration flag that also reads days and weeks (7d,
// 2w, as internal/duration does) and prints Go's form, like pflag's.
type durationFlag struct{ d *time.Duration }

func (f durationFlag) String() string { return f.d.String() }
func (f durationFlag) Type() string   { return "duration" }

func (f durationFlag) Set(s string) error {
	d, err := duration.Parse(s)
	if err != nil {
		return err
	}
	*f.d = d
	return nil
}

// Describe lists the settings for --help: key, flag, variable, default.
func (t Table) Describe() string {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "  file key\tflag\tvariable\tdefault")
	dash := func(s, pre string) string {
		if s == "" {
			return "-"
		}
		return pre + s
	}
	for _, s := range t {
		def := "-"
		switch d := s.Default.(type) {
		case nil:
		case string:
			if d != "" {
				def = d
			}
		case []string:
			def = "[" + strings.Join(d, ", ") + "]"
		case time.Duration:
			def = formatDuration(d)
		default:
			def = fmt.Sprint(d)
		}
		fmt.Fprintf(w, "  %s\t%s\t%s\t%s\n", s.Key, dash(s.Flag, "--"), dash(s.Env, ""), def)
	}
	w.Flush()
	return strings.TrimRight(b.String(), "\n")
}

// formatDuration prints 1h rather than 1h0m0s, 3d rather than 72h.
func formatDuration(d time.Duration) string {
	if d == 0 {
		return "0"
	}
	s := duration.Format(d)
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// Sources are what Load reads, each after the defaults in this order.
type Sources struct {
	Files   []string        // YAML files: a main file, then its drop-ins
	Environ func() []string // "NAME=value" entries; nil reads no variables
	Flags   *pflag.FlagSet  // flags that were set; nil for none
	// NoDefaults leaves the defaults out, for a command that applies them
	// later (the agent, under its group's policy).
	NoDefaults bool
}

// Settings are the layered values.
type Settings struct {
	k    *koanf.Koanf
	from map[string]string
}

// DefaultSource is what From says of a setting no layer set.
const DefaultSource = "default"

// Load layers the settings of t: defaults, files, variables, flags. An
// empty variable counts as unset.
func (t Table) Load(src Sources) (*Settings, error) {
	s := &Settings{k: koanf.New("."), from: map[string]string{}}
	defaults := map[string]any{}
	for _, st := range t {
		if st.Default != nil && !src.NoDefaults {
			setPath(defaults, st.Key, st.Default)
			s.from[st.Key] = DefaultSource
		}
	}
	if err := s.k.Load(confmap.Provider(defaults, ""), nil); err != nil {
		return nil, err
	}
	for _, f := range src.Files {
		if err := s.loadFile(t, f); err != nil {
			return nil, err
		}
	}
	if src.Environ != nil {
		ek := koanf.New(".")
		err := ek.Load(env.Provider(".", env.Opt{EnvironFunc: src.Environ, TransformFunc: func(k, v string) (string, any) {
			for _, st := range t {
				if st.Env != "" && st.Env == k && v != "" {
					return st.Key, v
				}
			}
			return "", nil
		}}), nil)
		if err != nil {
			return nil, err
		}
		if err := s.layer(t, ek, func(st *Setting) string { return st.Env }); err != nil {
			return nil, err
		}
	}
	if src.Flags != nil {
		fk := koanf.New(".")
		err := fk.Load(posflag.ProviderWithFlag(src.Flags, ".", nil, func(f *pflag.Flag) (string, any) {
			for _, st := range t {
				if st.Flag != "" && st.Flag == f.Name && f.Changed {
					if sv, ok := f.Value.(pflag.SliceValue); ok {
						return st.Key, sv.GetSlice()
					}
					return st.Key, f.Value.String()
				}
			}
			return "", nil
		}), nil)
		if err != nil {
			return nil, err
		}
		if err := s.layer(t, fk, func(st *Setting) string { return "--" + st.Flag }); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// layer checks the values a variable or flag layer set and merges them.
func (s *Settings) layer(t Table, lk *koanf.Koanf, name func(*Setting) string) error {
	out := map[string]any{}
	for i := range t {
		st := &t[i]
		v := lk.Get(st.Key)
		if v == nil {
			continue
		}
		pv, err := st.parse(v)
		if err != nil {
			return valueError(name(st), v, err)
		}
		setPath(out, st.Key, pv)
		s.from[st.Key] = name(st)
	}
	return s.k.Load(confmap.Provider(out, ""), nil)
}

// loadFile reads one YAML file, checks every key and value in it and
// merges it.
func (s *Settings) loadFile(t Table, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if len(b) > MaxFileSize {
		return fmt.Errorf("config %s: over the %d byte limit: %w", path, MaxFileSize, capread.ErrTooLarge)
	}
	fk := koanf.New(".")
	if err := fk.Load(rawbytes.Provider(b), YAML{}); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	out := map[string]any{}
	var secret []string
	err = t.walk("", fk.Raw(), func(st *Setting, v any) error {
		pv, err := st.parse(v)
		if err != nil {
			return valueError(st.Key, v, err)
		}
		if st.Secret != nil && st.Secret(pv) {
			secret = append(secret, st.Key)
		}
		setPath(out, st.Key, pv)
		return nil
	})
	if err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	// A file holding a secret (a token, a password) must be private,
	// like key and token files.
	if len(secret) > 0 {
		if err := capread.CheckPrivate(path, fi); err != nil {
			return fmt.Errorf("config holds a secret (%s): %w", strings.Join(secret, ", "), err)
		}
	}
	for k := range flatKeys(t, out) {
		s.from[k] = path
	}
	return s.k.Load(confmap.Provider(out, ""), nil)
}

// flatKeys lists the setting keys set in a nested layer.
func flatKeys(t Table, m map[string]any) map[string]bool {
	keys := map[string]bool{}
	for _, st := range t {
		if _, ok := getPath(m, st.Key); ok {
			keys[st.Key] = true
		}
	}
	return keys
}

// walk visits every key of a file's mapping m under prefix, refusing keys
// no setting has. A key with no value (key: or key: ~) is left unset.
func (t Table) walk(prefix string, m map[string]any, set func(*Setting, any) error) error {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		key, v := k, m[k]
		if prefix != "" {
			key = prefix + "." + k
		}
		if st := t.setting(key); st != nil {
			if v == nil {
				continue
			}
			if err := set(st, v); err != nil {
				return err
			}
			continue
		}
		if under := t.children(key); len(under) > 0 {
			if v == nil {
				continue
			}
			sub, ok := v.(map[string]any)
			if !ok {
				return fmt.Errorf("%s: %s instead of a mapping of %s", key, describe(v), strings.Join(under, ", "))
			}
			if err := t.walk(key, sub, set); err != nil {
				return err
			}
			continue
		}
		return fmt.Errorf("unknown key %s (valid %s: %s)", key, where(prefix), strings.Join(t.children(prefix), ", "))
	}
	return nil
}

func where(prefix string) string {
	if prefix == "" {
		return "keys"
	}
	return "under " + prefix
}

// valueError names where a bad value v came from (a key, a variable, a
// flag) and shows it when it is one value; a check that named the key
// itself is not prefixed again.
func valueError(name string, v any, err error) error {
	if strings.HasPrefix(err.Error(), name+":") || strings.HasPrefix(err.Error(), name+" ") {
		return err
	}
	switch v.(type) {
	case map[string]any, []any:
		return fmt.Errorf("%s: %w", name, err)
	}
	return fmt.Errorf("%s %s: %w", name, quote(v), err)
}

// quote shows a value in an error message.
func quote(v any) string {
	switch x := v.(type) {
	case string:
		return strconv.Quote(x)
	case []string:
		return strconv.Quote(strings.Join(x, ","))
	case map[string]any, []any:
		return "(" + describe(v) + ")"
	}
	return strconv.Quote(fmt.Sprint(v))
}

// parse turns a value as a file, a variable or a flag gives it (YAML
// types, a string, or a flag's []string) into the Kind's Go type.
func (st *Setting) parse(v any) (any, error) {
	out, err := st.parseKind(v)
	if err != nil {
		return nil, err
	}
	if st.Check != nil {
		if err := st.Check(out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (st *Setting) parseKind(v any) (any, error) {
	switch st.Kind {
	case String:
		if s, ok := scalar(v); ok {
			return s, nil
		}
		return nil, errors.New("use a single value")
	case List:
		switch x := v.(type) {
		case string:
			return splitList(x), nil
		case []string:
			return splitList(strings.Join(x, ",")), nil
		case []any:
			out := make([]string, 0, len(x))
			for _, e := range x {
				s, ok := scalar(e)
				if !ok {
					return nil, fmt.Errorf("%s in the list: use a list of single values", describe(e))
				}
				out = append(out, s)
			}
			return out, nil
		}
		return nil, errors.New("use a list, [a, b] (comma-separated in a variable or flag)")
	case Duration:
		switch x := v.(type) {
		case string:
			d, err := duration.Parse(x)
			if err != nil {
				return nil, errors.New("use a duration such as 90m, 36h or 7d (0 for none)")
			}
			return d, nil
		case int:
			if x == 0 {
				return time.Duration(0), nil
			}
		}
		return nil, errors.New("use a duration with its unit, such as 90m, 36h or 7d (0 for none)")
	case Int:
		switch x := v.(type) {
		case int:
			return x, nil
		case string:
			if n, err := strconv.Atoi(strings.TrimSpace(x)); err == nil {
				return n, nil
			}
		}
		return nil, errors.New("use a whole number")
	case Float:
		switch x := v.(type) {
		case int:
			return float64(x), nil
		case float64:
			return x, nil
		case string:
			if f, err := strconv.ParseFloat(strings.TrimSpace(x), 64); err == nil {
				return f, nil
			}
		}
		return nil, errors.New("use a number such as 500 or 0.5")
	case Bool:
		switch x := v.(type) {
		case bool:
			return x, nil
		case string:
			if b, err := strconv.ParseBool(strings.TrimSpace(x)); err == nil {
				return b, nil
			}
		}
		return nil, errors.New("use true or false")
	case Pairs:
		return st.parsePairs(v)
	case Map:
		return st.parseMap(v)
	}
	return nil, fmt.Errorf("setting %s has no kind", st.Key)
}

// nameValues reads NAME=VALUE items of a variable (comma-separated) or a
// repeated flag.
func nameValues(v any) ([][2]string, error) {
	bad := func(it string, n int) error {
		if n == 1 {
			return errors.New("use NAME=VALUE")
		}
		return fmt.Errorf("%q: use NAME=VALUE", it)
	}
	var items []string
	switch x := v.(type) {
	case string:
		items = splitList(x)
	case []string:
		for _, s := range x {
			if s = strings.TrimSpace(s); s != "" {
				items = append(items, s)
			}
		}
	default:
		return nil, nil
	}
	out := make([][2]string, 0, len(items))
	for _, it := range items {
		name, val, ok := strings.Cut(it, "=")
		if !ok || name == "" || val == "" {
			return nil, bad(it, len(items))
		}
		out = append(out, [2]string{name, val})
	}
	return out, nil
}

func (st *Setting) parsePairs(v any) (any, error) {
	f := st.Fields
	nv, err := nameValues(v)
	if err != nil {
		return nil, err
	}
	if nv != nil {
		out := make([]any, 0, len(nv))
		for _, p := range nv {
			out = append(out, map[string]any{f[0]: p[0], f[1]: p[1]})
		}
		return out, nil
	}
	want := fmt.Errorf("use a list of {%s: …, %s: …} (NAME=VALUE in a variable or flag)", f[0], f[1])
	list, ok := v.([]any)
	if !ok {
		return nil, want
	}
	out := make([]any, 0, len(list))
	for i, e := range list {
		m, ok := e.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("item %d: %w", i+1, want)
		}
		item := map[string]any{}
		for k, x := range m {
			if k != f[0] && k != f[1] {
				return nil, fmt.Errorf("item %d: unknown key %s (valid: %s, %s)", i+1, k, f[0], f[1])
			}
			s, ok := scalar(x)
			if !ok || s == "" {
				return nil, fmt.Errorf("item %d: %s: use a single value", i+1, k)
			}
			item[k] = s
		}
		for _, k := range f {
			if _, ok := item[k]; !ok {
				return nil, fmt.Errorf("item %d: %s missing", i+1, k)
			}
		}
		out = append(out, item)
	}
	return out, nil
}

func (st *Setting) parseMap(v any) (any, error) {
	nv, err := nameValues(v)
	if err != nil {
		return nil, err
	}
	out := map[string]any{}
	if nv != nil {
		for _, p := range nv {
			out[p[0]] = p[1]
		}
		return out, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("use a mapping NAME: VALUE (NAME=VALUE in a variable or flag)")
	}
	for k, x := range m {
		s, ok := scalar(x)
		if !ok {
			return nil, fmt.Errorf("%s: use a single value", k)
		}
		out[k] = s
	}
	return out, nil
}

// scalar gives a YAML scalar as the text it stands for.
func scalar(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case bool, int, int64, uint64, float64:
		return fmt.Sprint(x), true
	}
	return "", false
}

func splitList(v string) []string {
	out := []string{}
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// setPath sets a dotted key in a nested map.
func setPath(m map[string]any, key string, v any) {
	parts := strings.Split(key, ".")
	for _, p := range parts[:len(parts)-1] {
		sub, ok := m[p].(map[string]any)
		if !ok {
			sub = map[string]any{}
			m[p] = sub
		}
		m = sub
	}
	m[parts[len(parts)-1]] = v
}

// getPath finds a dotted key in a nested map.
func getPath(m map[string]any, key string) (any, bool) {
	parts := strings.Split(key, ".")
	for _, p := range parts[:len(parts)-1] {
		sub, ok := m[p].(map[string]any)
		if !ok {
			return nil, false
		}
		m = sub
	}
	v, ok := m[parts[len(parts)-1]]
	return v, ok
}

// From says where a setting's value comes from: a file's path, a
// variable, a --flag, DefaultSource, or "" when nothing set it.
func (s *Settings) From(key string) string { return s.from[key] }

// Set reports whether any layer but the defaults set key.
func (s *Settings) Set(key string) bool {
	f := s.from[key]
	return f != "" && f != DefaultSource
}

// Unmarshal stores the settings in out, a pointer to a struct whose yaml
// tags are the keys. A key with no field is an error (the table and the
// struct disagree).
func (s *Settings) Unmarshal(out any) error {
	return s.k.UnmarshalWithConf("", out, koanf.UnmarshalConf{DecoderConfig: &mapstructure.DecoderConfig{
		TagName:     "yaml",
		ErrorUnused: true,
		Result:      out,
	}})
}

// Files lists a configuration at path and its drop-ins: path itself
// (when it exists, or always when required), then the *.yaml files of
// path.d in lexical order.
func Files(path string, required bool) ([]string, error) {
	var files []string
	if _, err := os.Stat(path); err == nil || required {
		files = append(files, path)
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("config: %w", err)
	}
	drop, err := filepath.Glob(filepath.Join(DropInDir(path), "*.yaml"))
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	sort.Strings(drop)
	return append(files, drop...), nil
}

// DropInDir is the drop-in directory of the configuration at path
// (/etc/bulwark/agent.yaml.d): its *.yaml files are read after path, in
// lexical order, each overriding the keys it sets.
func DropInDir(path string) string { return path + ".d" }

// Value is a setting as a command shows it.
type Value struct {
	Key   string `json:"key"`
	Value any    `json:"value"` // nil when nothing set it; durations as text (90m, 7d)
	From  string `json:"from"`  // see Settings.From
}

// Secret is what Values shows for a secret's value.
const Secret = "(secret)"

// Values lists every setting of t, in t's order, with its value and where
// it comes from; a secret's value is shown as Secret.
func (s *Settings) Values(t Table) []Value {
	raw := s.k.Raw()
	out := make([]Value, 0, len(t))
	for _, st := range t {
		v, _ := getPath(raw, st.Key)
		switch x := v.(type) {
		case time.Duration:
			v = formatDuration(x)
		case string:
			if st.Secret != nil && st.Secret(x) {
				v = Secret
			}
		}
		out = append(out, Value{Key: st.Key, Value: v, From: s.from[st.Key]})
	}
	return out
}
