package catalog

import (
	"errors"
	"strings"
	"testing"
)

// machine is a hand-written Facts for rule tests: a described machine, not a
// mock of anything this package calls out to.
type machine struct {
	osID, versionID string
	arch            string
	debs            map[string]string // package → installed version
	updates         map[string]bool
	debErr          error
}

func (m *machine) OSRelease() (string, string) { return m.osID, m.versionID }
func (m *machine) Arch() string                { return m.arch }
func (m *machine) DebPackage(name string) (bool, string, error) {
	if m.debErr != nil {
		return false, "", m.debErr
	}
	v, ok := m.debs[name]
	return ok, v, nil
}
func (m *machine) UpdateInstalled(id string) bool { return m.updates[id] }

func bookworm() *machine {
	return &machine{
		osID: "debian", versionID: "12", arch: "amd64",
		debs:    map[string]string{"libssl3": "3.0.15-1~deb12u1", "bash": "5.2.15-2+b7", "epoched": "1:2.0-1"},
		updates: map[string]bool{"BW-2026-0001": true},
	}
}

func ptr[T any](v T) *T { return &v }

func TestRuleEval(t *testing.T) {
	yes, no := ptr(true), ptr(false)
	for _, tc := range []struct {
		name string
		rule Rule
		want bool
	}{
		{"os id", Rule{OS: &OSRule{ID: "debian"}}, true},
		{"os id and version", Rule{OS: &OSRule{ID: "debian", VersionID: "12"}}, true},
		{"os other version", Rule{OS: &OSRule{ID: "debian", VersionID: "11"}}, false},
		{"os other id", Rule{OS: &OSRule{ID: "ubuntu"}}, false},
		{"arch match", Rule{Arch: "amd64"}, true},
		{"arch other", Rule{Arch: "arm64"}, false},
		{"arch all", Rule{Arch: "all"}, true},
		{"installed", Rule{Deb: &DebRule{Package: "bash", Installed: yes}}, true},
		{"not installed wanted, installed", Rule{Deb: &DebRule{Package: "bash", Installed: no}}, false},
		{"not installed wanted, absent", Rule{Deb: &DebRule{Package: "telnetd", Installed: no}}, true},
		{"installed wanted, absent", Rule{Deb: &DebRule{Package: "telnetd", Installed: yes}}, false},
		{"bound on absent package", Rule{Deb: &DebRule{Package: "telnetd", VersionLT: "9"}}, false},
		// 3.0.15-1~deb12u1 sorts before 3.0.15-1: the tilde sorts before everything.
		{"tilde below release: lt holds", Rule{Deb: &DebRule{Package: "libssl3", VersionLT: "3.0.15-1"}}, true},
		{"tilde: equal is not lt", Rule{Deb: &DebRule{Package: "libssl3", VersionLT: "3.0.15-1~deb12u1"}}, false},
		{"tilde: le holds on equal", Rule{Deb: &DebRule{Package: "libssl3", VersionLE: "3.0.15-1~deb12u1"}}, true},
		{"tilde: eq", Rule{Deb: &DebRule{Package: "libssl3", VersionEQ: "3.0.15-1~deb12u1"}}, true},
		{"tilde: gt older security update", Rule{Deb: &DebRule{Package: "libssl3", VersionGT: "3.0.14-1~deb12u2"}}, true},
		{"tilde: not ge newer", Rule{Deb: &DebRule{Package: "libssl3", VersionGE: "3.0.15-1~deb12u2"}}, false},
		{"numeric not lexical", Rule{Deb: &DebRule{Package: "bash", VersionGT: "5.2.9"}}, true},
		{"binNMU suffix is newer", Rule{Deb: &DebRule{Package: "bash", VersionGT: "5.2.15-2"}}, true},
		{"epoch beats upstream", Rule{Deb: &DebRule{Package: "epoched", VersionGT: "9.9-1"}}, true},
		{"range holds", Rule{Deb: &DebRule{Package: "libssl3", Installed: yes, VersionGE: "3.0.0", VersionLT: "3.0.15-1"}}, true},
		{"range fails on one bound", Rule{Deb: &DebRule{Package: "libssl3", VersionGE: "3.0.0", VersionLT: "3.0.15-1~deb12u1"}}, false},
		{"update installed", Rule{UpdateInstalled: "BW-2026-0001"}, true},
		{"update not installed", Rule{UpdateInstalled: "BW-2026-0002"}, false},
		{"and all", Rule{And: []Rule{{Arch: "amd64"}, {OS: &OSRule{ID: "debian"}}}}, true},
		{"and one false", Rule{And: []Rule{{Arch: "amd64"}, {OS: &OSRule{ID: "ubuntu"}}}}, false},
		{"or one", Rule{Or: []Rule{{Arch: "arm64"}, {OS: &OSRule{ID: "debian"}}}}, true},
		{"or none", Rule{Or: []Rule{{Arch: "arm64"}, {OS: &OSRule{ID: "ubuntu"}}}}, false},
		{"not", Rule{Not: &Rule{Arch: "arm64"}}, true},
		{"not not", Rule{Not: &Rule{Not: &Rule{Arch: "arm64"}}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.rule.Eval(bookworm())
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("Eval = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestRuleEvalErrors(t *testing.T) {
	deep := Rule{Arch: "all"}
	for range MaxRuleDepth {
		deep = Rule{Not: &deep}
	}
	broken := bookworm()
	broken.debs["weird"] = "not a version"
	failing := bookworm()
	failing.debErr = errors.New("dpkg status unreadable")
	for _, tc := range []struct {
		name  string
		rule  Rule
		facts Facts
		want  string
	}{
		{"no member", Rule{}, bookworm(), "rule sets no condition"},
		{"two members", Rule{Arch: "amd64", UpdateInstalled: "x"}, bookworm(), "more than one condition"},
		{"empty and", Rule{And: []Rule{}}, bookworm(), "and: lists no rules"},
		{"nested malformed", Rule{Or: []Rule{{Arch: "arm64"}, {}}}, bookworm(), "or[1]: rule sets no condition"},
		{"too deep", deep, bookworm(), "nested deeper than 16"},
		{"facts error", Rule{Deb: &DebRule{Package: "bash", Installed: ptr(true)}}, failing, "deb bash: query package: dpkg status unreadable"},
		{"bad installed version", Rule{Deb: &DebRule{Package: "weird", VersionLT: "1"}}, broken, `deb weird: installed version "not a version"`},
		{"bad bound", Rule{Deb: &DebRule{Package: "bash", VersionLT: "x"}}, bookworm(), `deb bash: version_lt "x"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.rule.Eval(tc.facts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Eval = %v, %v; want error containing %q", got, err, tc.want)
			}
			if got {
				t.Fatal("a rule that errs must not hold")
			}
		})
	}
}

func TestApplicable(t *testing.T) {
	u := mustYAML(t, goodYAML) // debian 12 with libssl3 < 3.0.15-1~deb12u1
	for _, tc := range []struct {
		name string
		ssl  string // "" = not installed
		os   string
		want bool
	}{
		{"vulnerable version", "3.0.14-1~deb12u2", "12", true},
		{"fixed version", "3.0.15-1~deb12u1", "12", false},
		{"newer version", "3.0.16-1", "12", false},
		{"not installed", "", "12", false},
		{"other release", "3.0.14-1~deb12u2", "11", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := bookworm()
			m.versionID = tc.os
			delete(m.debs, "libssl3")
			if tc.ssl != "" {
				m.debs["libssl3"] = tc.ssl
			}
			got, err := u.Applicable(m)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("Applicable = %v, want %v", got, tc.want)
			}
		})
	}
	if ok, err := (&Update{ID: "x"}).Applicable(bookworm()); !ok || err != nil {
		t.Errorf("update without rules: Applicable = %v, %v; want true", ok, err)
	}
	m := bookworm()
	m.debErr = errors.New("boom")
	if _, err := u.Applicable(m); err == nil || !strings.Contains(err.Error(), "update BW-2026-0042: applies_to[1]: deb libssl3") {
		t.Errorf("Applicable with failing facts: %v", err)
	}
}
