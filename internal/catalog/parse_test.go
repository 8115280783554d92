package catalog

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// goodYAML is the example of DESIGN.md, "Update metadata".
const goodYAML = `id: BW-2026-0042              # unique and stable
title: OpenSSL security update
advisory: DSA-5900-1
description: |
  Fixes a buffer overflow.
  Second line.
product: debian-12
classification: security
severity: critical
cves: [CVE-2026-1234]
released: 2026-11-20
supersedes: [BW-2026-0031]
requires: [BW-2026-0001]
reboot: required
applies_to:
  - os: {id: debian, version_id: "12"}
  - deb: {package: libssl3, installed: true, version_lt: "3.0.15-1~deb12u1"}
installer:
  type: deb
payloads:
  - file: libssl3_3.0.15-1~deb12u1_amd64.deb
uninstallable: true
`

func mustYAML(t testing.TB, doc string) *Update {
	t.Helper()
	u, err := ParseYAML("update.yaml", []byte(doc))
	if err != nil {
		t.Fatalf("ParseYAML: %v", err)
	}
	return u
}

// withField replaces the line starting with "key:" in goodYAML (or appends
// repl when key is empty).
func withLine(t testing.TB, key, repl string) string {
	t.Helper()
	if key == "" {
		return goodYAML + repl + "\n"
	}
	lines := strings.Split(goodYAML, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, key+":") {
			lines[i] = repl
			return strings.Join(lines, "\n")
		}
	}
	t.Fatalf("no line %q in goodYAML", key)
	return ""
}

func TestParseYAMLGood(t *testing.T) {
	u := mustYAML(t, goodYAML)
	yes := true
	want := &Update{
		ID: "BW-2026-0042", Title: "OpenSSL security update", Advisory: "DSA-5900-1",
		Description: "Fixes a buffer overflow.\nSecond line.\n", Product: "debian-12",
		Classification: ClassSecurity, Severity: SeverityCritical, CVEs: []string{"CVE-2026-1234"},
		Released: "2026-11-20", Supersedes: []string{"BW-2026-0031"}, Requires: []string{"BW-2026-0001"},
		Reboot: RebootRequired,
		AppliesTo: []Rule{
			{OS: &OSRule{ID: "debian", VersionID: "12"}},
			{Deb: &DebRule{Package: "libssl3", Installed: &yes, VersionLT: "3.0.15-1~deb12u1"}},
		},
		Installer:     Installer{Type: InstallerDeb},
		Payloads:      []Payload{{File: "libssl3_3.0.15-1~deb12u1_amd64.deb"}},
		Uninstallable: true,
	}
	u.lines = nil
	if !reflect.DeepEqual(u, want) {
		t.Fatalf("got  %+v\nwant %+v", u, want)
	}
}

func TestLine(t *testing.T) {
	u := mustYAML(t, goodYAML)
	for field, want := range map[string]int{
		"id":                           1,
		"severity":                     9,
		"released":                     11,
		"supersedes":                   12,
		"supersedes[0]":                12,
		"applies_to":                   15,
		"applies_to[0]":                16,
		"applies_to[0].os.version_id":  16,
		"applies_to[1].deb.version_lt": 17,
		"installer.type":               19,
		"payloads[0].file":             21,
		"uninstallable":                22,
		"nonexistent":                  0,
	} {
		if got := u.Line(field); got != want {
			t.Errorf("Line(%q) = %d, want %d", field, got, want)
		}
	}
	if got := (&Update{}).Line("id"); got != 0 {
		t.Errorf("Line on an Update built in code = %d, want 0", got)
	}
}

func TestParseYAMLVariants(t *testing.T) {
	for _, tc := range []struct {
		name  string
		doc   string
		check func(*Update) bool
	}{
		{"lockdown with profile", strings.NewReplacer("installer:\n  type: deb\npayloads:\n  - file: libssl3_3.0.15-1~deb12u1_amd64.deb\n",
			"installer: {type: lockdown, profile: web-server}\n").Replace(goodYAML),
			func(u *Update) bool { return u.Installer.Profile == "web-server" && u.Payloads == nil }},
		{"archive with prefix", strings.Replace(goodYAML, "  type: deb\n", "  type: archive\n  prefix: /opt/example\n", 1),
			func(u *Update) bool { return u.Installer.Prefix == "/opt/example" }},
		{"quoted date", withLine(t, "released", `released: "2026-02-28"`),
			func(u *Update) bool { return u.Released == "2026-02-28" }},
		{"unquoted version_id number", strings.Replace(goodYAML, `version_id: "12"`, `version_id: 12`, 1),
			func(u *Update) bool { return u.AppliesTo[0].OS.VersionID == "12" }},
		{"empty lists are absent", withLine(t, "cves", "cves: []"),
			func(u *Update) bool { return u.CVEs == nil }},
		{"no rules", strings.Replace(goodYAML, "applies_to:\n  - os: {id: debian, version_id: \"12\"}\n  - deb: {package: libssl3, installed: true, version_lt: \"3.0.15-1~deb12u1\"}\n", "", 1),
			func(u *Update) bool { return u.AppliesTo == nil }},
		{"nested rules", strings.Replace(goodYAML, "  - os: {id: debian, version_id: \"12\"}\n",
			"  - or:\n      - os: {id: debian, version_id: \"12\"}\n      - and:\n          - os: {id: ubuntu}\n          - not: {arch: i386}\n", 1),
			func(u *Update) bool { return u.AppliesTo[0].Or[1].And[1].Not.Arch == "i386" }},
		{"installed false", strings.Replace(goodYAML, "  - deb: {package: libssl3, installed: true, version_lt: \"3.0.15-1~deb12u1\"}\n",
			"  - deb: {package: telnetd, installed: false}\n", 1),
			func(u *Update) bool { return !*u.AppliesTo[1].Deb.Installed }},
		{"version range", strings.Replace(goodYAML, `installed: true, version_lt:`, `version_ge: "3.0.0", version_lt:`, 1),
			func(u *Update) bool {
				return u.AppliesTo[1].Deb.Installed == nil && u.AppliesTo[1].Deb.VersionGE == "3.0.0"
			}},
		{"empty payload with hash-free yaml", strings.Replace(goodYAML, "uninstallable: true\n", "", 1),
			func(u *Update) bool { return !u.Uninstallable }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := mustYAML(t, tc.doc)
			if !tc.check(u) {
				t.Fatalf("unexpected result %+v", u)
			}
		})
	}
}

// TestParseYAMLBad: each row is a bad document; the error must name the
// field and its line, and say what would be valid.
func TestParseYAMLBad(t *testing.T) {
	for _, tc := range []struct {
		name string
		doc  string
		want []string // substrings of the error, the first usually "update.yaml:LINE: FIELD: "
	}{
		{"unknown top-level field", withLine(t, "severity", "severty: critical"),
			[]string{"update.yaml:9: severty: unknown field (valid: id, title,", "update.yaml: severity: required: one of critical, important"}},
		{"unknown nested field", strings.Replace(goodYAML, "  type: deb\n", "  type: deb\n  command: rm -rf /\n", 1),
			[]string{"update.yaml:20: installer.command: unknown field (valid: type, prefix, profile)"}},
		{"unknown rule key", strings.Replace(goodYAML, "  - os: {id", "  - kernel: {id", 1),
			[]string{"update.yaml:16: applies_to[0].kernel: unknown field (valid: os, arch, deb, update_installed, and, or, not)"}},
		{"unknown deb key", strings.Replace(goodYAML, "version_lt:", "version_lesser:", 1),
			[]string{"update.yaml:17: applies_to[1].deb.version_lesser: unknown field (valid: package, installed, version_lt"}},
		{"unknown payload key", strings.Replace(goodYAML, "  - file: libssl3", "  - path: libssl3", 1),
			[]string{"update.yaml:21: payloads[0].path: unknown field (valid: file)", "update.yaml:21: payloads[0].file: required"}},
		{"duplicate field", withLine(t, "", "title: Again"),
			[]string{"update.yaml:23: title: duplicate field"}},
		{"revision in yaml", withLine(t, "", "revision: 3"),
			[]string{"update.yaml:23: revision: set by the repository tool"}},
		{"withdrawn in yaml", withLine(t, "", "withdrawn: true"),
			[]string{"update.yaml:23: withdrawn: set by the repository tool"}},
		{"payload hash in yaml", strings.Replace(goodYAML, "amd64.deb\n", "amd64.deb\n    sha256: 00\n", 1),
			[]string{"update.yaml:22: payloads[0].sha256: set by the repository tool"}},
		{"payload package in yaml", strings.Replace(goodYAML, "amd64.deb\n", "amd64.deb\n    deb: {package: libssl3, version: \"1\", architecture: amd64}\n", 1),
			[]string{"update.yaml:22: payloads[0].deb: set by the repository tool"}},
		{"missing id", withLine(t, "id", "# no id"), []string{"update.yaml: id: required"}},
		{"bad id", withLine(t, "id", "id: ../etc"), []string{"update.yaml:1: id: \"../etc\" is not a valid id (letters, digits"}},
		{"id too long", withLine(t, "id", "id: "+strings.Repeat("a", 129)), []string{"update.yaml:1: id: "}},
		{"missing title", withLine(t, "title", "#"), []string{"title: required"}},
		{"title with escape", withLine(t, "title", `title: "a\e[31mred"`), []string{"update.yaml:2: title: contains control character U+001B"}},
		{"bad classification", withLine(t, "classification", "classification: hotfix"),
			[]string{"update.yaml:8: classification: unknown classification \"hotfix\" (valid: security, critical, rollup, service-pack"}},
		{"bad severity", withLine(t, "severity", "severity: urgent"),
			[]string{"update.yaml:9: severity: unknown severity \"urgent\" (valid: critical, important, moderate, low, unspecified)"}},
		{"bad reboot", withLine(t, "reboot", "reboot: sometimes"), []string{"update.yaml:14: reboot: unknown reboot value \"sometimes\" (valid: never, required, maybe)"}},
		{"bad product", withLine(t, "product", "product: debian 12"), []string{"update.yaml:7: product: \"debian 12\" is not a valid product"}},
		{"bad date", withLine(t, "released", "released: 2026-02-30"), []string{"update.yaml:11: released: \"2026-02-30\" is not a valid calendar date"}},
		{"timestamp not date", withLine(t, "released", "released: 2026-02-03T10:00:00Z"), []string{"update.yaml:11: released: \"2026-02-03T10:00:00Z\" is not a date; write YYYY-MM-DD"}},
		{"bad cve", withLine(t, "cves", "cves: [CVE-2026-1234, CVE-26-1]"), []string{"update.yaml:10: cves[1]: \"CVE-26-1\" is not a CVE id; write CVE-YYYY-NNNN"}},
		{"duplicate cve", withLine(t, "cves", "cves: [CVE-2026-1234, CVE-2026-1234]"), []string{"update.yaml:10: cves[1]: CVE-2026-1234 listed twice"}},
		{"supersedes itself", withLine(t, "supersedes", "supersedes: [BW-2026-0042]"), []string{"update.yaml:12: supersedes[0]: the update cannot list itself"}},
		{"supersedes duplicate", withLine(t, "supersedes", "supersedes:\n  - BW-1\n  - BW-1"), []string{"update.yaml:14: supersedes[1]: BW-1 listed twice"}},
		{"requires bad id", withLine(t, "requires", "requires: [\"a/b\"]"), []string{"update.yaml:13: requires[0]: \"a/b\" is not a valid update id"}},
		{"requires what it supersedes", withLine(t, "requires", "requires: [BW-2026-0031]"), []string{"update.yaml:13: requires[0]: BW-2026-0031 is also in supersedes"}},
		{"bad installer", strings.Replace(goodYAML, "  type: deb\n", "  type: exe\n", 1), []string{"update.yaml:19: installer.type: unknown installer \"exe\" (valid: deb, archive, lockdown)"}},
		{"missing installer", strings.Replace(goodYAML, "installer:\n  type: deb\n", "", 1), []string{"update.yaml: installer.type: required: one of deb, archive, lockdown"}},
		{"deb without payloads", strings.Replace(goodYAML, "payloads:\n  - file: libssl3_3.0.15-1~deb12u1_amd64.deb\n", "", 1),
			[]string{"update.yaml: payloads: installer type deb needs at least one payload file"}},
		{"payload path traversal", strings.Replace(goodYAML, "- file: libssl3", "- file: ../../libssl3", 1),
			[]string{"update.yaml:21: payloads[0].file: \"../../libssl3_3.0.15-1~deb12u1_amd64.deb\" is not a plain file name"}},
		{"payload dotdot in name", strings.Replace(goodYAML, "- file: libssl3", "- file: a..libssl3", 1), []string{"update.yaml:21: payloads[0].file: "}},
		{"payload absolute", strings.Replace(goodYAML, "- file: libssl3", "- file: /etc/libssl3", 1), []string{"update.yaml:21: payloads[0].file: \"/etc/libssl3"}},
		{"payload duplicate", strings.Replace(goodYAML, "  - file: libssl3_3.0.15-1~deb12u1_amd64.deb\n", "  - file: a.deb\n  - file: a.deb\n", 1),
			[]string{"update.yaml:22: payloads[1].file: a.deb listed twice"}},
		{"archive without prefix", strings.Replace(goodYAML, "  type: deb\n", "  type: archive\n", 1), []string{"update.yaml:18: installer.prefix: required for installer type archive"}},
		{"archive relative prefix", strings.Replace(goodYAML, "  type: deb\n", "  type: archive\n  prefix: opt/x\n", 1),
			[]string{"update.yaml:20: installer.prefix: \"opt/x\" must be an absolute, clean path", `such as "/opt/x"`}},
		{"archive unclean prefix", strings.Replace(goodYAML, "  type: deb\n", "  type: archive\n  prefix: /opt/../etc\n", 1),
			[]string{"update.yaml:20: installer.prefix: \"/opt/../etc\" must be an absolute, clean path"}},
		{"prefix on deb", strings.Replace(goodYAML, "  type: deb\n", "  type: deb\n  prefix: /opt\n", 1), []string{"update.yaml:20: installer.prefix: only for installer type archive"}},
		{"lockdown without profile", strings.Replace(goodYAML, "  type: deb\npayloads:\n  - file: libssl3_3.0.15-1~deb12u1_amd64.deb\n", "  type: lockdown\n", 1),
			[]string{"installer.profile: required for installer type lockdown"}},
		{"lockdown with payload", strings.Replace(goodYAML, "  type: deb\n", "  type: lockdown\n  profile: sysadmin\n", 1),
			[]string{"update.yaml:21: payloads: installer type lockdown takes no payloads"}},
		{"rule with two keys", strings.Replace(goodYAML, "  - os: {id: debian, version_id: \"12\"}\n", "  - os: {id: debian}\n    arch: amd64\n", 1),
			[]string{"update.yaml:16: applies_to[0]: a rule has exactly one key"}},
		{"empty rule", strings.Replace(goodYAML, "  - os: {id: debian, version_id: \"12\"}\n", "  - {}\n", 1), []string{"update.yaml:16: applies_to[0]: a rule has exactly one key"}},
		{"bad debian version", strings.Replace(goodYAML, `version_lt: "3.0.15-1~deb12u1"`, `version_lt: "x3.0"`, 1),
			[]string{"update.yaml:17: applies_to[1].deb.version_lt: \"x3.0\" is not a Debian version: version number does not start with digit"}},
		{"debian version empty revision", strings.Replace(goodYAML, `version_lt: "3.0.15-1~deb12u1"`, `version_lt: "3.0-"`, 1),
			[]string{"update.yaml:17: applies_to[1].deb.version_lt: \"3.0-\" is not a Debian version"}},
		{"installed false with bound", strings.Replace(goodYAML, "installed: true", "installed: false", 1),
			[]string{"update.yaml:17: applies_to[1].deb.installed: installed: false cannot be combined with version bounds"}},
		{"deb rule without condition", strings.Replace(goodYAML, `{package: libssl3, installed: true, version_lt: "3.0.15-1~deb12u1"}`, `{package: libssl3}`, 1),
			[]string{"update.yaml:17: applies_to[1].deb: needs installed: true|false or a version bound"}},
		{"bad package name", strings.Replace(goodYAML, "package: libssl3", "package: LibSSL", 1), []string{"update.yaml:17: applies_to[1].deb.package: \"LibSSL\" is not a Debian package name"}},
		{"installed not bool", strings.Replace(goodYAML, "installed: true", "installed: yes", 1), []string{"update.yaml:17: applies_to[1].deb.installed: must be true or false, not a string"}},
		{"empty and", strings.Replace(goodYAML, "  - os: {id: debian, version_id: \"12\"}\n", "  - and: []\n", 1), []string{"update.yaml:16: applies_to[0].and: must list at least one rule"}},
		{"bad arch", strings.Replace(goodYAML, "  - os: {id: debian, version_id: \"12\"}\n", "  - arch: AMD64\n", 1), []string{"update.yaml:16: applies_to[0].arch: \"AMD64\" is not a dpkg architecture"}},
		{"bad os id", strings.Replace(goodYAML, "id: debian,", "id: Debian,", 1), []string{"update.yaml:16: applies_to[0].os.id: \"Debian\" is not an os-release ID"}},
		{"bad update_installed", strings.Replace(goodYAML, "  - os: {id: debian, version_id: \"12\"}\n", "  - update_installed: \"-x\"\n", 1), []string{"update.yaml:16: applies_to[0].update_installed: \"-x\" is not a valid update id"}},
		{"rules too deep", strings.Replace(goodYAML, "  - os: {id: debian, version_id: \"12\"}\n", "  - "+strings.Repeat("not: {", 16)+"arch: all"+strings.Repeat("}", 16)+"\n", 1),
			[]string{"update.yaml:16: applies_to[0].not.not.not.not.not.not.not.not.not.not.not.not.not.not.not.not: rules nested deeper than 16 levels"}},
		{"title is a list", withLine(t, "title", "title: [a, b]"), []string{"update.yaml:2: title: must be a string, not a list"}},
		{"title null", withLine(t, "title", "title:"), []string{"update.yaml:2: title: must be a string, not null"}},
		{"cves not a list", withLine(t, "cves", "cves: CVE-2026-1234"), []string{"update.yaml:10: cves: must be a list, not a string"}},
		{"uninstallable not bool", withLine(t, "uninstallable", "uninstallable: 1"), []string{"update.yaml:22: uninstallable: must be true or false, not a number"}},
		{"custom tag", withLine(t, "title", "title: !shell echo"), []string{"update.yaml:2: title: must be a string, not a value tagged !shell"}},
		{"anchor and alias", withLine(t, "requires", "requires: &r [BW-1]\nextra: *r"),
			[]string{"update.yaml:13: requires: YAML anchors and aliases are not allowed", "update.yaml:14: extra: unknown field"}},
		{"alias value", withLine(t, "", "x: &a 1\ny: *a"), []string{"update.yaml:23: x: unknown field"}},
		{"billion laughs", withLine(t, "cves", "cves: &a [CVE-2026-1234, CVE-2026-1235]\nsupersedes: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nrequires: [*b, *b, *b, *b, *b, *b, *b, *b, *b]"),
			[]string{"update.yaml:10: cves: YAML anchors and aliases are not allowed", "update.yaml:11: supersedes: YAML anchors", "update.yaml:12: requires[0]: YAML anchors"}},
		{"merge key", withLine(t, "installer", "installer:\n  <<: {type: deb}"), []string{"update.yaml:19: installer: keys must be plain strings"}},
		{"non-string key", withLine(t, "", "1: x"), []string{"update.yaml:23: document: keys must be plain strings, not a number"}},
		{"not a mapping", "- a\n- b\n", []string{"update.yaml:1: document: must be a mapping with keys id, title"}},
		{"syntax error", "id: [\n", []string{"update.yaml:", "YAML syntax"}},
		{"empty document", "", []string{"update.yaml: empty document"}},
		{"comment only", "# nothing\n", []string{"update.yaml: empty document"}},
		{"two documents", goodYAML + "---\nid: other\n", []string{"update.yaml:23: more than one YAML document"}},
		{"two documents second bad", goodYAML + "---\n[\n", []string{"update.yaml:", "YAML syntax"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, err := ParseYAML("update.yaml", []byte(tc.doc))
			if err == nil {
				t.Fatalf("accepted:\n%s\nas %+v", tc.doc, u)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %q is not ErrInvalid", err)
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Errorf("error %q carries no *FieldError", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%s\nlacks %q", err, w)
				}
			}
		})
	}
}

func TestParseYAMLReportsAllProblemsSortedByLine(t *testing.T) {
	doc := strings.NewReplacer(
		"severity: critical", "severity: urgent",
		"id: BW-2026-0042", "id: bad/id",
		"- file: libssl3", "- file: ../libssl3",
	).Replace(goodYAML)
	_, err := ParseYAML("u.yaml", []byte(doc))
	if err == nil {
		t.Fatal("accepted")
	}
	got := strings.Split(err.Error(), "\n")
	want := []string{"u.yaml:1: id:", "u.yaml:9: severity:", "u.yaml:21: payloads[0].file:"}
	if len(got) != len(want) {
		t.Fatalf("got %d problems, want %d:\n%s", len(got), len(want), err)
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("problem %d = %q, want prefix %q", i, got[i], want[i])
		}
	}
}

func TestSizeCaps(t *testing.T) {
	big := make([]byte, MaxYAMLSize+1)
	for i := range big {
		big[i] = ' '
	}
	if _, err := ParseYAML("big.yaml", big); !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "big.yaml") {
		t.Errorf("ParseYAML of %d bytes: %v, want ErrTooLarge naming the file", len(big), err)
	}
	if _, err := ParseJSON(big); !errors.Is(err, ErrTooLarge) {
		t.Errorf("ParseJSON of %d bytes: %v, want ErrTooLarge", len(big), err)
	}
	// Just under the cap is read (and fails only as invalid content).
	ok := append([]byte(goodYAML), bytes.Repeat([]byte("#"), MaxYAMLSize-len(goodYAML))...)
	if _, err := ParseYAML("max.yaml", ok); err != nil {
		t.Errorf("ParseYAML of exactly %d bytes: %v", len(ok), err)
	}
}

func TestJSONRoundTrip(t *testing.T) {
	docs := map[string]string{
		"design example": goodYAML,
		"nested rules": strings.Replace(goodYAML, "  - os: {id: debian, version_id: \"12\"}\n",
			"  - or:\n      - os: {id: debian, version_id: \"12\"}\n      - and:\n          - update_installed: BW-1\n          - not: {deb: {package: telnetd, installed: false}}\n", 1),
		"lockdown": strings.NewReplacer("installer:\n  type: deb\npayloads:\n  - file: libssl3_3.0.15-1~deb12u1_amd64.deb\n",
			"installer: {type: lockdown, profile: web-server}\n").Replace(goodYAML),
		"html and unicode": withLine(t, "title", `title: "<b>Ünïcode</b> & \u2603"`),
	}
	for name, doc := range docs {
		t.Run(name, func(t *testing.T) {
			u := mustYAML(t, doc)
			js, err := u.JSON()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasSuffix(js, []byte("}\n")) || !bytes.Contains(js, []byte("\n  \"id\": ")) {
				t.Errorf("JSON not 2-space indented with trailing newline:\n%s", js)
			}
			again, err := u.JSON()
			if err != nil || !bytes.Equal(js, again) {
				t.Fatalf("JSON not deterministic:\n%s\n%s", js, again)
			}
			back, err := ParseJSON(js)
			if err != nil {
				t.Fatalf("ParseJSON of JSON(): %v\n%s", err, js)
			}
			u.lines, back.lines = nil, nil
			if !reflect.DeepEqual(u, back) {
				t.Fatalf("round trip changed the update:\n%+v\n%+v", u, back)
			}
			js2, _ := back.JSON()
			if !bytes.Equal(js, js2) {
				t.Fatalf("JSON of the round-tripped update differs:\n%s\n%s", js, js2)
			}
		})
	}
}

func TestJSONRepositoryFields(t *testing.T) {
	u := mustYAML(t, goodYAML)
	u.Revision = 3
	u.Withdrawn = true
	u.Payloads[0].Length = 1234
	u.Payloads[0].SHA256 = strings.Repeat("ab", 32)
	js, err := u.JSON()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseJSON(js)
	if err != nil {
		t.Fatal(err)
	}
	if back.Revision != 3 || !back.Withdrawn || back.Payloads[0].Length != 1234 || back.Payloads[0].SHA256 != u.Payloads[0].SHA256 {
		t.Fatalf("repository fields lost: %+v", back)
	}
}

func TestJSONRefusesInvalid(t *testing.T) {
	u := mustYAML(t, goodYAML)
	u.Severity = "urgent"
	if _, err := u.JSON(); err == nil || !strings.Contains(err.Error(), "severity: unknown severity") {
		t.Fatalf("JSON of an invalid update: %v", err)
	}
}

func goodJSON(t testing.TB) map[string]any {
	t.Helper()
	js, err := mustYAML(t, goodYAML).JSON()
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(js, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func marshal(t testing.TB, m map[string]any) []byte {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestParseJSONAttacks: update.json comes from the network; each row is one
// way a tampered or sloppy document could be read differently than signed
// or smuggle in something the schema does not allow.
func TestParseJSONAttacks(t *testing.T) {
	edit := func(f func(m map[string]any)) func(t testing.TB) []byte {
		return func(t testing.TB) []byte {
			m := goodJSON(t)
			f(m)
			return marshal(t, m)
		}
	}
	raw := func(s string) func(testing.TB) []byte { return func(testing.TB) []byte { return []byte(s) } }
	for _, tc := range []struct {
		name string
		doc  func(t testing.TB) []byte
		want string
	}{
		{"unknown field smuggled", edit(func(m map[string]any) { m["install_command"] = "curl | sh" }), "install_command: unknown field"},
		{"unknown installer field", edit(func(m map[string]any) { m["installer"].(map[string]any)["args"] = "--force" }), "installer.args: unknown field"},
		{"case-folded field", edit(func(m map[string]any) { m["ID"] = "BW-2"; delete(m, "id") }), "ID: unknown field"},
		{"duplicate key, last wins elsewhere", func(t testing.TB) []byte {
			b := marshal(t, goodJSON(t))
			return append([]byte(`{"severity":"low",`), b[1:]...)
		}, "severity: duplicate field"},
		{"trailing second object", func(t testing.TB) []byte {
			b := marshal(t, goodJSON(t))
			return append(b, []byte(`{"id":"x"}`)...)
		}, "data after the update object"},
		{"trailing garbage", func(t testing.TB) []byte { return append(marshal(t, goodJSON(t)), 'x') }, "JSON syntax"},
		{"truncated", func(t testing.TB) []byte { b := marshal(t, goodJSON(t)); return b[:len(b)/2] }, "JSON syntax"},
		{"string where bool", edit(func(m map[string]any) { m["uninstallable"] = "true" }), "uninstallable: must be true or false, not a string"},
		{"number where string", edit(func(m map[string]any) { m["id"] = 42 }), "id: must be a string, not a number"},
		{"fractional revision", edit(func(m map[string]any) { m["revision"] = 1.5 }), "revision: must be a whole number"},
		{"negative revision", edit(func(m map[string]any) { m["revision"] = -1 }), "revision: -1 is negative"},
		{"huge revision", raw(`{"revision": 99999999999999999999999}`), "revision: must be a whole number"},
		{"null title", edit(func(m map[string]any) { m["title"] = nil }), "title: must be a string, not null"},
		{"payload traversal", edit(func(m map[string]any) {
			m["payloads"] = []any{map[string]any{"file": "../../../etc/shadow"}}
		}), `payloads[0].file: "../../../etc/shadow" is not a plain file name`},
		{"bad sha256", edit(func(m map[string]any) {
			m["payloads"] = []any{map[string]any{"file": "a.deb", "length": 3, "sha256": "XYZ"}}
		}), `payloads[0].sha256: "XYZ" is not a SHA-256 digest`},
		{"length without hash", edit(func(m map[string]any) {
			m["payloads"] = []any{map[string]any{"file": "a.deb", "length": 3}}
		}), `payloads[0].sha256: required with length`},
		{"deb package as an option", edit(func(m map[string]any) {
			m["payloads"] = []any{map[string]any{"file": "a.deb", "deb": map[string]any{"package": "--force-all", "version": "1", "architecture": "all"}}}
		}), `payloads[0].deb.package: "--force-all" is not a Debian package name`},
		{"deb version bad", edit(func(m map[string]any) {
			m["payloads"] = []any{map[string]any{"file": "a.deb", "deb": map[string]any{"package": "libssl3", "version": "1 2", "architecture": "all"}}}
		}), `payloads[0].deb.version: "1 2" is not a Debian version`},
		{"deb unknown field", edit(func(m map[string]any) {
			m["payloads"] = []any{map[string]any{"file": "a.deb", "deb": map[string]any{"package": "libssl3", "version": "1", "architecture": "all", "postinst": "x"}}}
		}), `payloads[0].deb.postinst: unknown field`},
		{"deep nesting", raw(strings.Repeat(`{"not":`, 100000) + "{}" + strings.Repeat("}", 100000)), "nested deeper than"},
		{"deep rules", edit(func(m map[string]any) {
			var r any = map[string]any{"arch": "all"}
			for range 17 {
				r = map[string]any{"not": r}
			}
			m["applies_to"] = []any{r}
		}), "rules nested deeper than 16 levels"},
		{"top-level array", raw(`[]`), "document: must be a mapping"},
		{"empty input", raw(``), "JSON syntax"},
		{"rule with two members", edit(func(m map[string]any) {
			m["applies_to"] = []any{map[string]any{"arch": "amd64", "os": map[string]any{"id": "debian"}}}
		}), "applies_to[0]: a rule has exactly one key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := tc.doc(t)
			u, err := ParseJSON(doc)
			if err == nil {
				t.Fatalf("accepted %.200s as %+v", doc, u)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %q is not ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error\n%s\nlacks %q", err, tc.want)
			}
		})
	}
}

func TestValidateBuiltInCode(t *testing.T) {
	u := &Update{
		ID: "BW-1", Title: "t", Product: "p", Classification: ClassTool, Severity: SeverityLow,
		Released: "2026-01-01", Reboot: RebootNever, Installer: Installer{Type: InstallerLockdown, Profile: "end-user"},
	}
	if err := u.Validate(); err != nil {
		t.Fatalf("valid update refused: %v", err)
	}
	u.AppliesTo = []Rule{{}, {Arch: "amd64", UpdateInstalled: "BW-2"}, {Or: []Rule{}}}
	err := u.Validate()
	for _, want := range []string{"applies_to[0]: a rule needs exactly one condition", "applies_to[1]: a rule has exactly one condition", "applies_to[2].or: must list at least one rule"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate: %v, want %q", err, want)
		}
	}
}

func TestEnums(t *testing.T) {
	for s, rank := range map[Severity]int{SeverityCritical: 4, SeverityImportant: 3, SeverityModerate: 2, SeverityLow: 1, SeverityUnspecified: 0, "bogus": 0} {
		if s.Rank() != rank {
			t.Errorf("%s.Rank() = %d, want %d", s, s.Rank(), rank)
		}
	}
	if s, err := ParseSeverity("important"); err != nil || s != SeverityImportant {
		t.Errorf("ParseSeverity(important) = %q, %v", s, err)
	}
	for _, bad := range []string{"", "Critical", "urgent"} {
		if _, err := ParseSeverity(bad); err == nil || !strings.Contains(err.Error(), "valid: critical, important, moderate, low, unspecified") {
			t.Errorf("ParseSeverity(%q) = %v", bad, err)
		}
	}
	if c, err := ParseClassification("service-pack"); err != nil || c != ClassServicePack {
		t.Errorf("ParseClassification(service-pack) = %q, %v", c, err)
	}
	if _, err := ParseClassification("hotfix"); err == nil {
		t.Error("ParseClassification(hotfix) accepted")
	}
	if r, err := ParseReboot("maybe"); err != nil || r != RebootMaybe {
		t.Errorf("ParseReboot(maybe) = %q, %v", r, err)
	}
}

func TestFieldErrorFormat(t *testing.T) {
	for _, tc := range []struct {
		e    FieldError
		want string
	}{
		{FieldError{File: "update.yaml", Line: 12, Field: "severty", Msg: "unknown field"}, "update.yaml:12: severty: unknown field"},
		{FieldError{File: "update.yaml", Field: "id", Msg: "required"}, "update.yaml: id: required"},
		{FieldError{Line: 3, Field: "id", Msg: "required"}, "line 3: id: required"},
		{FieldError{Field: "id", Msg: "required"}, "id: required"},
		{FieldError{File: "f", Line: 1, Msg: "YAML syntax: x"}, "f:1: YAML syntax: x"},
	} {
		if got := tc.e.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
	}
}

// TestProblemCap: a document of many thousands of bad fields gets a bounded
// message, not one line per field.
func TestProblemCap(t *testing.T) {
	var b strings.Builder
	for i := range 5000 {
		b.WriteString("x" + strconv.Itoa(i) + ": 1\n")
	}
	_, err := ParseYAML("many.yaml", []byte(b.String()))
	if err == nil {
		t.Fatal("accepted")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != maxProblems+1 {
		t.Fatalf("%d lines in the error, want %d", len(lines), maxProblems+1)
	}
	if last := lines[len(lines)-1]; !strings.HasPrefix(last, "many.yaml: ") || !strings.HasSuffix(last, "more problems not shown") {
		t.Fatalf("last line %q", last)
	}
}
