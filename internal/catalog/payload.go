package catalog

import (
	"fmt"

	"pault.ag/go/debian/version"
)

// PackageState says how the Debian packages an update carries (its payloads'
// package fields, set by the repository tool) stand on a machine.
type PackageState struct {
	// Known: the update is of installer type deb and every payload names
	// its package; otherwise the other fields are empty and only
	// applies_to decides.
	Known bool
	// Present: at least one of the packages is installed, at any version.
	Present bool
	// Outdated lists the packages installed at a version older than the
	// payload's, and, when Present, the ones not installed at all (the
	// update adds them), as "name (installed → payload)".
	Outdated []string
}

// Current reports that the update's packages are all installed at the
// payload versions or newer: there is nothing for it to do.
func (s PackageState) Current() bool { return s.Known && s.Present && len(s.Outdated) == 0 }

// Packages compares the update's payload packages with the machine f
// describes, in Debian version order (as dpkg --compare-versions).
func (u *Update) Packages(f Facts) (PackageState, error) {
	var st PackageState
	if u.Installer.Type != InstallerDeb || len(u.Payloads) == 0 {
		return st, nil
	}
	for _, p := range u.Payloads {
		if p.Deb == nil {
			return st, nil
		}
	}
	st.Known = true
	var absent []string
	for _, p := range u.Payloads {
		if p.Deb.Architecture != "all" && f.Arch() != "" && p.Deb.Architecture != f.Arch() {
			continue // another architecture's package: not this machine's
		}
		installed, have, err := f.DebPackage(p.Deb.Package)
		if err != nil {
			return PackageState{}, fmt.Errorf("update %s: package %s: %w", u.ID, p.Deb.Package, err)
		}
		if !installed {
			absent = append(absent, p.Deb.Package+" (not installed → "+p.Deb.Version+")")
			continue
		}
		st.Present = true
		hv, err := parseDebVersion(have)
		if err != nil {
			return PackageState{}, fmt.Errorf("update %s: package %s: installed version %q: %w", u.ID, p.Deb.Package, have, err)
		}
		pv, err := parseDebVersion(p.Deb.Version)
		if err != nil {
			return PackageState{}, fmt.Errorf("update %s: payload %s: version %q: %w", u.ID, p.File, p.Deb.Version, err)
		}
		if version.Compare(hv, pv) < 0 {
			st.Outdated = append(st.Outdated, p.Deb.Package+" ("+have+" → "+p.Deb.Version+")")
		}
	}
	if st.Present {
		st.Outdated = append(st.Outdated, absent...)
	}
	return st, nil
}

// PlatformApplicable reports whether the update's top-level os and arch
// rules hold on the machine f describes (true when it has none): an update
// for another release or architecture never applies because a package of
// the same name is older here.
func (u *Update) PlatformApplicable(f Facts) bool {
	for i := range u.AppliesTo {
		r := &u.AppliesTo[i]
		if r.OS == nil && r.Arch == "" {
			continue
		}
		if ok, err := r.eval(f, 1); err != nil || !ok {
			return false
		}
	}
	return true
}
