package catalog

import (
	"strings"
	"testing"
)

func TestPackages(t *testing.T) {
	m := &machine{osID: "debian", versionID: "12", arch: "amd64", debs: map[string]string{"libpam0g": "1.5.2-6+deb12u3", "libpam-modules": "1.5.2-6+deb12u2"}}
	u := &Update{ID: "BW-PAM", Installer: Installer{Type: InstallerDeb}}
	for _, p := range []string{"libpam0g", "libpam-modules", "libpam-modules-bin"} {
		u.Payloads = append(u.Payloads, Payload{File: p + ".deb", Deb: &PayloadDeb{Package: p, Version: "1.5.2-6+deb12u3", Architecture: "amd64"}})
	}
	u.Payloads = append(u.Payloads, Payload{File: "x-i386.deb", Deb: &PayloadDeb{Package: "libpam-x", Version: "9", Architecture: "i386"}})
	st, err := u.Packages(m)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(st.Outdated, "; ")
	want := "libpam-modules (1.5.2-6+deb12u2 → 1.5.2-6+deb12u3); libpam-modules-bin (not installed → 1.5.2-6+deb12u3)"
	if !st.Known || !st.Present || got != want || st.Current() {
		t.Fatalf("state %+v\noutdated %s\nwant     %s", st, got, want)
	}
	m.debs["libpam-modules"] = "1.5.2-6+deb12u4" // newer counts as current
	m.debs["libpam-modules-bin"] = "1.5.2-6+deb12u3"
	if st, _ := u.Packages(m); !st.Current() {
		t.Fatalf("all current: %+v", st)
	}
	// None installed: not this machine's packages, only applies_to decides.
	if st, _ := u.Packages(&machine{arch: "amd64", debs: map[string]string{}}); !st.Known || st.Present || len(st.Outdated) != 0 || st.Current() {
		t.Fatalf("none installed: %+v", st)
	}
	// Without package fields (published by an earlier release): unknown.
	u.Payloads[0].Deb = nil
	if st, _ := u.Packages(m); st.Known {
		t.Fatalf("unknown: %+v", st)
	}
}
