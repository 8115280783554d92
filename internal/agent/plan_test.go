package agent

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/approval"
	"github.com/bulwarkhq/bulwark/internal/catalog"
)

// machine is a hand-written catalog.Facts for planning tests; the agent's
// real facts (internal/facts) read a dpkg database and os-release.
type machine struct {
	os, version, arch string
	debs              map[string]string
}

func (m machine) OSRelease() (string, string) { return m.os, m.version }
func (m machine) Arch() string                { return m.arch }
func (m machine) DebPackage(name string) (bool, string, error) {
	v, ok := m.debs[name]
	return ok, v, nil
}
func (m machine) UpdateInstalled(string) bool { return false }

var debian12 = machine{"debian", "12", "amd64", map[string]string{"libssl3": "3.0.11-1~deb12u2", "curl": "7.88.1-10"}}

func cand(id string, sev catalog.Severity, mutate func(*catalog.Update, *approval.Approval)) Candidate {
	installed := true
	u := &catalog.Update{ID: id, Title: id, Product: "debian-12", Classification: catalog.ClassSecurity, Severity: sev,
		Released: "2026-11-20", Reboot: catalog.RebootNever, Installer: catalog.Installer{Type: "deb"},
		AppliesTo: []catalog.Rule{{Deb: &catalog.DebRule{Package: "libssl3", Installed: &installed, VersionLT: "3.0.15-1~deb12u1"}}}}
	a := approval.Approval{Vendor: "debian", ID: id, Action: approval.ActionInstall, Rollout: 100}
	if mutate != nil {
		mutate(u, &a)
	}
	return Candidate{Vendor: "debian", Approval: a, Update: u}
}

func TestBuildPlan(t *testing.T) {
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	past := now.Add(-time.Hour)
	cands := []Candidate{
		cand("BW-1", catalog.SeverityImportant, nil),
		cand("BW-2", catalog.SeverityCritical, func(u *catalog.Update, a *approval.Approval) { u.Supersedes = []string{"BW-1"} }),
		cand("BW-3", catalog.SeverityLow, func(u *catalog.Update, a *approval.Approval) { a.Action = approval.ActionDecline }),
		cand("BW-4", catalog.SeverityLow, func(u *catalog.Update, a *approval.Approval) {
			u.AppliesTo = []catalog.Rule{{OS: &catalog.OSRule{ID: "ubuntu"}}}
		}),
		cand("BW-5", catalog.SeverityModerate, func(u *catalog.Update, a *approval.Approval) { u.Requires = []string{"BW-6"} }),
		cand("BW-6", catalog.SeverityLow, nil),
		cand("BW-7", catalog.SeverityLow, func(u *catalog.Update, a *approval.Approval) { u.Requires = []string{"BW-404"} }),
		cand("BW-8", catalog.SeverityLow, func(u *catalog.Update, a *approval.Approval) { a.Deadline = &past }),
		cand("BW-9", catalog.SeverityLow, func(u *catalog.Update, a *approval.Approval) { u.Withdrawn = true }),
	}
	p, err := BuildPlan(cands, PlanInput{AgentID: "a1", Facts: debian12, Installed: map[string]bool{}, Now: now,
		Policy: Policy{Mode: ModeAuto, AutoInstallSeverity: catalog.SeverityImportant}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range p.Steps {
		got = append(got, fmt.Sprintf("%s:%s", s.Update.ID, s.Action))
	}
	want := "BW-2:install BW-6:download BW-5:download BW-8:install"
	if strings.Join(got, " ") != want {
		t.Fatalf("steps = %s\nwant    %s", strings.Join(got, " "), want)
	}
	for id, st := range map[string]State{"BW-1": StateSuperseded, "BW-3": StateDeclined, "BW-4": StateNotApplicable,
		"BW-7": StateFailed, "BW-9": StateNotApplicable, "BW-2": StateNeeded} {
		if d := p.Decisions["debian/"+id]; d.State != st {
			t.Errorf("%s: state %s (%s), want %s", id, d.State, d.Reason, st)
		}
	}
	if r := p.Decisions["debian/BW-7"].Reason; !strings.Contains(r, "BW-404") {
		t.Errorf("BW-7 reason %q does not name the missing requirement", r)
	}
}

func TestPolicyDecide(t *testing.T) {
	win, err := ParseWindow("sat,sun 23:00-02:00")
	if err != nil {
		t.Fatal(err)
	}
	sat2330 := time.Date(2026, 11, 21, 23, 30, 0, 0, time.UTC) // a Saturday
	sun0130 := sat2330.Add(2 * time.Hour)
	mon1000 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	crit := &catalog.Update{Severity: catalog.SeverityCritical}
	low := &catalog.Update{Severity: catalog.SeverityLow}
	soon := mon1000.Add(time.Hour)
	for _, tc := range []struct {
		name  string
		p     Policy
		u     *catalog.Update
		dl    *time.Time
		now   time.Time
		asked bool
		want  Action
	}{
		{"notify never downloads", Policy{Mode: ModeNotify}, crit, nil, mon1000, false, ActionNotify},
		{"download waits for a person", Policy{Mode: ModeDownload}, crit, nil, mon1000, false, ActionDownload},
		{"a person asked", Policy{Mode: ModeNotify}, low, nil, mon1000, true, ActionInstall},
		{"auto installs important and above", Policy{Mode: ModeAuto, AutoInstallSeverity: catalog.SeverityImportant}, crit, nil, mon1000, false, ActionInstall},
		{"auto leaves low severity to a person", Policy{Mode: ModeAuto, AutoInstallSeverity: catalog.SeverityImportant}, low, nil, mon1000, false, ActionDownload},
		{"scheduled inside the window", Policy{Mode: ModeScheduled, AutoInstallSeverity: catalog.SeverityLow, Window: win}, low, nil, sat2330, false, ActionInstall},
		{"scheduled window past midnight", Policy{Mode: ModeScheduled, AutoInstallSeverity: catalog.SeverityLow, Window: win}, low, nil, sun0130, false, ActionInstall},
		{"scheduled outside the window", Policy{Mode: ModeScheduled, AutoInstallSeverity: catalog.SeverityLow, Window: win}, crit, nil, mon1000, false, ActionDownload},
		{"deadline passed overrides notify", Policy{Mode: ModeNotify}, low, &mon1000, mon1000, false, ActionInstall},
		{"deadline not yet", Policy{Mode: ModeNotify}, low, &soon, mon1000, false, ActionNotify},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.p.Decide(approval.Approval{Deadline: tc.dl, Rollout: 100}, tc.u, tc.now, tc.asked)
			if got != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
		})
	}
	for _, bad := range []string{"someday 02:00-03:00", "mon 2am-3am", "mon"} {
		if _, err := ParseWindow(bad); err == nil {
			t.Errorf("ParseWindow(%q) accepted", bad)
		}
	}
}

func TestRolloutIsStableAndMonotonic(t *testing.T) {
	in10, in50 := 0, 0
	for i := 0; i < 1000; i++ {
		id := fmt.Sprintf("agent-%d", i)
		a, b := InRollout(id, "v", "BW-1", 10), InRollout(id, "v", "BW-1", 50)
		if a && !b {
			t.Fatalf("%s is in the 10%% but not the 50%%", id)
		}
		if a != InRollout(id, "v", "BW-1", 10) {
			t.Fatal("not stable")
		}
		if a {
			in10++
		}
		if b {
			in50++
		}
	}
	if in10 < 60 || in10 > 140 || in50 < 430 || in50 > 570 {
		t.Fatalf("10%% chose %d of 1000, 50%% chose %d", in10, in50)
	}
}

func TestPlanRefusesRequirementCycles(t *testing.T) {
	a := cand("BW-A", catalog.SeverityLow, func(u *catalog.Update, _ *approval.Approval) { u.Requires = []string{"BW-B"} })
	b := cand("BW-B", catalog.SeverityLow, func(u *catalog.Update, _ *approval.Approval) { u.Requires = []string{"BW-A"} })
	_, err := BuildPlan([]Candidate{a, b}, PlanInput{Facts: debian12, Installed: map[string]bool{}, Policy: Policy{Mode: ModeDownload}})
	if err == nil || !strings.Contains(err.Error(), "cycle") {
		t.Fatalf("err = %v", err)
	}
}

func TestPlanAndPassUninstall(t *testing.T) {
	removable := cand("BW-U1", catalog.SeverityLow, func(u *catalog.Update, a *approval.Approval) {
		u.Uninstallable = true
		a.Action = approval.ActionUninstall
	})
	stuck := cand("BW-U2", catalog.SeverityLow, func(u *catalog.Update, a *approval.Approval) { a.Action = approval.ActionUninstall })
	absent := cand("BW-U3", catalog.SeverityLow, func(u *catalog.Update, a *approval.Approval) {
		u.Uninstallable = true
		a.Action = approval.ActionUninstall
	})
	installed := map[string]bool{"debian/BW-U1": true, "debian/BW-U2": true}
	p, err := BuildPlan([]Candidate{removable, stuck, absent}, PlanInput{Facts: debian12, Installed: installed, Policy: Policy{Mode: ModeNotify}})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Steps) != 1 || !p.Steps[0].Uninstall || p.Steps[0].Update.ID != "BW-U1" {
		t.Fatalf("steps %+v; want one uninstall of BW-U1 (even in notify mode: the site decided)", p.Steps)
	}
	if d := p.Decisions["debian/BW-U2"]; d.State != StateInstalled || !strings.Contains(d.Reason, "not uninstallable") {
		t.Fatalf("BW-U2: %+v", d)
	}
	if d := p.Decisions["debian/BW-U3"]; d.State != StateNotApplicable {
		t.Fatalf("BW-U3: %+v", d)
	}

	f := newPassFixture(t)
	a := f.open(t, recorder{})
	defer a.Close()
	res, err := a.runPass(context.Background(), p.Steps, nil)
	if err != nil || len(res.Uninstalled) != 1 {
		t.Fatalf("pass: %+v %v", res, err)
	}
	if r := a.state("debian/BW-U1"); r.State != StateNotApplicable || !strings.Contains(r.Reason, "uninstalled") {
		t.Fatalf("after uninstall: %+v", r)
	}
}

// pamUpdate is a deb update of the pam packages whose payloads name their
// package versions (as the repository tool records them) and whose
// applies_to names only libpam0g, as a publisher might write it.
func pamUpdate(id string) Candidate {
	return cand(id, catalog.SeverityCritical, func(u *catalog.Update, a *approval.Approval) {
		u.AppliesTo = []catalog.Rule{{Deb: &catalog.DebRule{Package: "libpam0g", VersionLT: "1.5.2-6+deb12u3"}}}
		for _, p := range []string{"libpam0g", "libpam-modules-bin", "libpam-modules", "libpam-runtime"} {
			u.Payloads = append(u.Payloads, catalog.Payload{File: p + ".deb", Deb: &catalog.PayloadDeb{Package: p, Version: "1.5.2-6+deb12u3", Architecture: "amd64"}})
		}
	})
}

// Applicability from what dpkg says now: a half-installed update (three of
// four packages upgraded, applies_to no longer holding) applies again and
// is retried even though this agent remembers it installed; one whose
// packages are all current is installed, and satisfies requires; one for
// another release does not apply because a package of the same name is
// older here.
func TestBuildPlanFromPayloadPackages(t *testing.T) {
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	half := machine{"debian", "12", "amd64", map[string]string{
		"libpam0g": "1.5.2-6+deb12u3", "libpam-modules-bin": "1.5.2-6+deb12u3", "libpam-runtime": "1.5.2-6+deb12u3", "libpam-modules": "1.5.2-6+deb12u2"}}
	done := machine{"debian", "12", "amd64", map[string]string{
		"libpam0g": "1.5.2-6+deb12u3", "libpam-modules-bin": "1.5.2-6+deb12u3", "libpam-runtime": "1.5.2-6+deb12u3", "libpam-modules": "1.5.2-6+deb12u3"}}
	other := pamUpdate("BW-OTHER")
	other.Update.AppliesTo = append(other.Update.AppliesTo, catalog.Rule{OS: &catalog.OSRule{ID: "debian", VersionID: "11"}})
	needs := cand("BW-NEEDS", catalog.SeverityCritical, func(u *catalog.Update, a *approval.Approval) {
		u.AppliesTo = nil
		u.Requires = []string{"BW-PAM"}
	})
	for _, tt := range []struct {
		name      string
		facts     machine
		installed map[string]bool
		pam       State
		reason    string
		needs     State
	}{
		{"half_installed_remembered_installed", half, map[string]bool{"debian/BW-PAM": true}, StateNeeded, "libpam-modules (1.5.2-6+deb12u2 → 1.5.2-6+deb12u3)", StateNeeded},
		{"half_installed_unknown_to_agent", half, map[string]bool{}, StateNeeded, "not current", StateNeeded},
		{"current_never_installed_by_agent", done, map[string]bool{}, StateNotApplicable, "", StateNeeded},
		{"current_installed_by_agent", done, map[string]bool{"debian/BW-PAM": true}, StateInstalled, "", StateNeeded},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, err := BuildPlan([]Candidate{pamUpdate("BW-PAM"), other, needs}, PlanInput{AgentID: "a1", Facts: tt.facts, Installed: tt.installed, Now: now,
				Policy: Policy{Mode: ModeAuto, AutoInstallSeverity: catalog.SeverityImportant}})
			if err != nil {
				t.Fatal(err)
			}
			d := p.Decisions["debian/BW-PAM"]
			if d.State != tt.pam || !strings.Contains(d.Reason, tt.reason) {
				t.Errorf("BW-PAM: %s (%s), want %s (%s)", d.State, d.Reason, tt.pam, tt.reason)
			}
			if d := p.Decisions["debian/BW-OTHER"]; d.State != StateNotApplicable {
				t.Errorf("BW-OTHER (debian 11): %s (%s), want not-applicable", d.State, d.Reason)
			}
			if d := p.Decisions["debian/BW-NEEDS"]; d.State != tt.needs {
				t.Errorf("BW-NEEDS: %s (%s), want %s", d.State, d.Reason, tt.needs)
			}
		})
	}
}
