package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/bulwarkhq/bulwark/internal/capread"
)

// table has one setting of every kind.
var table = Table{
	{Key: "name", Flag: "name", Env: "T_NAME", Default: "def", Help: "a string"},
	{Key: "tags", Kind: List, Flag: "tag", Env: "T_TAGS", Default: []string{"a"}, Help: "a list"},
	{Key: "net.wait", Kind: Duration, Flag: "wait", Env: "T_WAIT", Default: time.Hour, Help: "a duration"},
	{Key: "net.tries", Kind: Int, Flag: "tries", Env: "T_TRIES", Default: 3, Help: "a count",
		Check: func(v any) error {
			if v.(int) <= 0 {
				return errors.New("use a positive count")
			}
			return nil
		}},
	{Key: "net.rate", Kind: Float, Flag: "rate", Env: "T_RATE", Default: 1.5, Help: "a rate"},
	{Key: "on", Kind: Bool, Flag: "on", Env: "T_ON", Help: "a switch"},
	{Key: "repos", Kind: Pairs, Fields: [2]string{"name", "dir"}, Flag: "repo", Env: "T_REPOS", Help: "NAME=DIR"},
	{Key: "pins", Kind: Map, Env: "T_PINS", Help: "NAME: VALUE"},
	{Key: "token", Env: "T_TOKEN", Secret: func(v any) bool { return v.(string) != "" }, Help: "a secret"},
}

type target struct {
	Name  string         `yaml:"name"`
	Tags  []string       `yaml:"tags"`
	Net   targetNet      `yaml:"net"`
	On    bool           `yaml:"on"`
	Repos []targetRepo   `yaml:"repos"`
	Pins  map[string]any `yaml:"pins"`
	Token string         `yaml:"token"`
}

type targetNet struct {
	Wait  time.Duration `yaml:"wait"`
	Tries int           `yaml:"tries"`
	Rate  float64       `yaml:"rate"`
}

type targetRepo struct {
	Name string `yaml:"name"`
	Dir  string `yaml:"dir,omitempty"`
}

func write(t testing.TB, dir, name, body string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, []byte(body), mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func flags(t testing.TB, args ...string) *pflag.FlagSet {
	t.Helper()
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	table.Register(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return fs
}

func load(t testing.TB, src Sources) (target, *Settings) {
	t.Helper()
	s, err := table.Load(src)
	if err != nil {
		t.Fatal(err)
	}
	var out target
	if err := s.Unmarshal(&out); err != nil {
		t.Fatal(err)
	}
	return out, s
}

// TestPrecedence: flag > variable > drop-ins (later first) > file >
// default, setting by setting.
func TestPrecedence(t *testing.T) {
	dir := t.TempDir()
	main := write(t, dir, "c.yaml", "name: file\ntags: [f1, f2]\nnet: {wait: 2d, tries: 5, rate: 2}\non: true\nrepos: [{name: r, dir: /r}]\npins: {example.com: p1, other: p2}\n", 0o644)
	write(t, dir, "c.yaml.d/20-b.yaml", "net: {tries: 7}\npins: {other: p3}\n", 0o644)
	write(t, dir, "c.yaml.d/10-a.yaml", "net: {tries: 6, rate: 3}\nname: dropin\n", 0o644)
	files, err := Files(main, true)
	if err != nil {
		t.Fatal(err)
	}
	env := []string{"T_NAME=env", "T_WAIT=90m", "T_TAGS=e1, e2,", "T_ON=false", "T_RATE=", "OTHER=x"}
	out, s := load(t, Sources{Files: files, Environ: func() []string { return env }, Flags: flags(t, "--name", "flag", "--repo", "x=/x", "--repo", "y=/y")})
	want := target{Name: "flag", Tags: []string{"e1", "e2"}, Net: targetNet{Wait: 90 * time.Minute, Tries: 7, Rate: 3}, On: false,
		Repos: []targetRepo{{"x", "/x"}, {"y", "/y"}}, Pins: map[string]any{"example.com": "p1", "other": "p3"}}
	if !equal(out, want) {
		t.Fatalf("got  %+v\nwant %+v", out, want)
	}
	for key, from := range map[string]string{"name": "--name", "tags": "T_TAGS", "net.wait": "T_WAIT", "net.tries": files[2],
		"net.rate": files[1], "on": "T_ON", "repos": "--repo", "pins": files[2], "token": ""} {
		if got := s.From(key); got != from {
			t.Errorf("From(%s) = %q, want %q", key, got, from)
		}
	}
	// Nothing set: the defaults.
	out, s = load(t, Sources{Flags: flags(t)})
	if !equal(out, target{Name: "def", Tags: []string{"a"}, Net: targetNet{Wait: time.Hour, Tries: 3, Rate: 1.5}}) || s.Set("name") || s.From("name") != DefaultSource {
		t.Fatalf("defaults: %+v", out)
	}
	// NoDefaults: only what was set.
	out, _ = load(t, Sources{Environ: func() []string { return []string{"T_TRIES=9"} }, NoDefaults: true})
	if !equal(out, target{Net: targetNet{Tries: 9}}) {
		t.Fatalf("no defaults: %+v", out)
	}
}

func equal(a, b target) bool {
	return a.Name == b.Name && strings.Join(a.Tags, ",") == strings.Join(b.Tags, ",") && a.Net == b.Net && a.On == b.On &&
		len(a.Repos) == len(b.Repos) && (len(a.Repos) == 0 || a.Repos[0] == b.Repos[0] && a.Repos[len(a.Repos)-1] == b.Repos[len(b.Repos)-1]) &&
		len(a.Pins) == len(b.Pins) && a.Pins["other"] == b.Pins["other"] && a.Pins["example.com"] == b.Pins["example.com"] && a.Token == b.Token
}

// TestRefusals: every refusal names its source and key and says what
// would be valid.
func TestRefusals(t *testing.T) {
	for _, tc := range []struct {
		name, file string
		env        []string
		args       []string
		want       []string
	}{
		{"unknown key", "nmae: x\n", nil, nil, []string{"c.yaml", "unknown key nmae", "valid keys: name, tags, net, on"}},
		{"unknown nested key", "net: {wiat: 1h}\n", nil, nil, []string{"c.yaml", "unknown key net.wiat", "valid under net: wait, tries, rate"}},
		{"section as a value", "net: 5\n", nil, nil, []string{"c.yaml", "net: a number instead of a mapping of wait, tries, rate"}},
		{"not a mapping", "- a\n", nil, nil, []string{"c.yaml", "holds a list"}},
		{"bad yaml", "name: [\n", nil, nil, []string{"c.yaml", "yaml:"}},
		{"duplicate key", "name: a\nname: b\n", nil, nil, []string{"c.yaml", "already defined"}},
		{"string as a list", "name: [a]\n", nil, nil, []string{"c.yaml: name: use a single value"}},
		{"list of lists", "tags: [[a]]\n", nil, nil, []string{"c.yaml", "tags", "a list in the list"}},
		{"bad duration", "net: {wait: soon}\n", nil, nil, []string{"c.yaml", `net.wait "soon"`, "90m, 36h or 7d"}},
		{"negative duration", "net: {wait: -1h}\n", nil, nil, []string{"c.yaml", "net.wait", "90m, 36h or 7d"}},
		{"duration without unit", "net: {wait: 60}\n", nil, nil, []string{"c.yaml", "net.wait", "with its unit"}},
		{"check", "net: {tries: 0}\n", nil, nil, []string{"c.yaml", `net.tries "0"`, "positive count"}},
		{"float as int", "net: {tries: 1.5}\n", nil, nil, []string{"c.yaml", "net.tries", "whole number"}},
		{"pairs: unknown field", "repos: [{name: a, dri: b}]\n", nil, nil, []string{"c.yaml", "repos", "item 1: unknown key dri (valid: name, dir)"}},
		{"pairs: missing field", "repos: [{name: a}]\n", nil, nil, []string{"c.yaml", "repos", "item 1: dir missing"}},
		{"map of lists", "pins: {a: [b]}\n", nil, nil, []string{"c.yaml", "pins", "a: use a single value"}},
		{"variable", "", []string{"T_WAIT=soon"}, nil, []string{`T_WAIT "soon"`, "90m"}},
		{"variable: bool", "", []string{"T_ON=maybe"}, nil, []string{`T_ON "maybe"`, "true or false"}},
		{"variable: pairs", "", []string{"T_REPOS=a=b,c"}, nil, []string{"T_REPOS", `"c": use NAME=VALUE`}},
		{"flag: pairs", "", nil, []string{"--repo", "a"}, []string{`--repo "a": use NAME=VALUE`}},
		{"flag: pairs, the second", "", nil, []string{"--repo", "a=b", "--repo", "c"}, []string{`--repo "a=b,c": "c": use NAME=VALUE`}},
		{"flag: check", "", nil, []string{"--tries", "-1"}, []string{`--tries "-1"`, "positive count"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := write(t, t.TempDir(), "c.yaml", tc.file, 0o644)
			_, err := table.Load(Sources{Files: []string{p}, Environ: func() []string { return tc.env }, Flags: flags(t, tc.args...)})
			if err == nil {
				t.Fatalf("accepted; want %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("err = %v\nwant %q in it", err, w)
				}
			}
		})
	}
}

// A file that sets a secret must be private; the others need not be.
func TestSecretFile(t *testing.T) {
	dir := t.TempDir()
	open := write(t, dir, "open.yaml", "token: s3cret\n", 0o644)
	if _, err := table.Load(Sources{Files: []string{open}}); !errors.Is(err, capread.ErrReadableByOthers) || !strings.Contains(err.Error(), "(token)") {
		t.Fatalf("a token in a file others can read: %v", err)
	}
	os.Chmod(open, 0o600)
	if _, err := table.Load(Sources{Files: []string{open}}); err != nil {
		t.Fatal(err)
	}
	plain := write(t, dir, "plain.yaml", "name: x\ntoken: \"\"\n", 0o644)
	if _, err := table.Load(Sources{Files: []string{plain}}); err != nil {
		t.Fatal(err)
	}
	big := write(t, dir, "big.yaml", "name: "+strings.Repeat("x", MaxFileSize)+"\n", 0o600)
	if _, err := table.Load(Sources{Files: []string{big}}); !errors.Is(err, capread.ErrTooLarge) {
		t.Fatalf("a file over the limit: %v", err)
	}
}

// A key with no value leaves the setting as the layers below set it, as
// yaml did; an empty list is a value (reboot_command: [] never reboots).
func TestNullAndEmpty(t *testing.T) {
	dir := t.TempDir()
	p := write(t, dir, "c.yaml", "name:\nnet: ~\ntags: []\n", 0o644)
	out, s := load(t, Sources{Files: []string{p}})
	if out.Name != "def" || out.Net.Tries != 3 || out.Tags == nil || len(out.Tags) != 0 || s.From("tags") != p {
		t.Fatalf("%+v", out)
	}
}

// Unmarshal refuses a setting its struct has no field for: the table and
// the struct must agree.
func TestUnmarshalMismatch(t *testing.T) {
	s, err := table.Load(Sources{})
	if err != nil {
		t.Fatal(err)
	}
	var small struct {
		Name string `yaml:"name"`
	}
	if err := s.Unmarshal(&small); err == nil {
		t.Fatal("settings without fields were dropped silently")
	}
}

func TestFilesAndDropIns(t *testing.T) {
	dir := t.TempDir()
	main := filepath.Join(dir, "c.yaml")
	write(t, dir, "c.yaml.d/b.yaml", "", 0o644)
	write(t, dir, "c.yaml.d/a.yaml", "", 0o644)
	write(t, dir, "c.yaml.d/notes.txt", "", 0o644)
	got, err := Files(main, false)
	if err != nil || strings.Join(got, " ") != filepath.Join(dir, "c.yaml.d/a.yaml")+" "+filepath.Join(dir, "c.yaml.d/b.yaml") {
		t.Fatalf("without the main file: %v %v", got, err)
	}
	if got, _ := Files(main, true); len(got) != 3 || got[0] != main {
		t.Fatalf("required: %v", got)
	}
	if _, err := table.Load(Sources{Files: []string{main}}); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a missing --config file: %v", err)
	}
}

func TestDescribe(t *testing.T) {
	d := table.Describe()
	for _, w := range []string{"net.wait", "--wait", "T_WAIT", "1h", "[a]", "token  ", "def"} {
		if !strings.Contains(d, w) {
			t.Fatalf("Describe lacks %q:\n%s", w, d)
		}
	}
	if strings.Contains(d, "1h0m0s") {
		t.Fatalf("durations as Go prints them:\n%s", d)
	}
}

// FuzzLoad: whatever a file holds, Load refuses it or the settings
// unmarshal into their struct; it never panics.
func FuzzLoad(f *testing.F) {
	f.Add([]byte("name: x\ntags: [a, 1, true]\nnet: {wait: 1d2h, tries: 2, rate: 0.5}\n"))
	f.Add([]byte("repos: [{name: a, dir: b}]\npins: {a.b: c}\n"))
	f.Add([]byte("net: [1]\n"))
	f.Add([]byte("? [a]\n: b\n"))
	f.Add([]byte("a: &x [*x]\n"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(dir, "f.yaml")
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := table.Load(Sources{Files: []string{p}})
		if err != nil {
			return
		}
		var out target
		if err := s.Unmarshal(&out); err != nil {
			t.Fatalf("loaded but does not unmarshal: %v", err)
		}
	})
}
