package agent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bulwarkhq/bulwark/internal/debtest"
	"github.com/bulwarkhq/bulwark/internal/facts"
	"github.com/bulwarkhq/bulwark/internal/install"
	"github.com/bulwarkhq/bulwark/internal/tuf"
)

// publishDeb builds a real .deb and publishes it as an update.
func (w *world) publishDeb(id string, p debtest.Package, yamlExtra string) {
	w.t.Helper()
	dir := w.t.TempDir()
	deb := debtest.Build(w.t, dir, p)
	y := filepath.Join(dir, id+".yaml")
	os.WriteFile(y, []byte(fmt.Sprintf(`id: %s
title: %s %s
product: debian-12
classification: security
severity: critical
released: 2026-11-20
installer: {type: deb}
payloads: [{file: %s}]
%s`, id, p.Name, p.Version, filepath.Base(deb), yamlExtra)), 0o644)
	if _, err := w.vendor.Publish(context.Background(), y, tuf.PublishOptions{}); err != nil {
		w.t.Fatal(err)
	}
}

// The scenario without the server: three real .deb updates, one a
// rollup superseding another, two needing a reboot; the agent installs the
// right two packages with real dpkg into a directory root and calls the
// reboot command exactly once.
func TestCycleInstallsRealDebsWithOneReboot(t *testing.T) {
	w := newWorld(t)
	applies := "applies_to:\n  - not: {deb: {package: libfoo, version_ge: \"1.1\"}}\n"
	w.publishDeb("BW-1", debtest.Package{Name: "libfoo", Version: "1.1", Files: map[string]string{"/usr/lib/libfoo.txt": "1.1\n"}}, "reboot: required\n"+applies)
	w.publishDeb("BW-2", debtest.Package{Name: "libfoo", Version: "1.2", Files: map[string]string{"/usr/lib/libfoo.txt": "1.2\n"}}, "reboot: required\nsupersedes: [BW-1]\n"+applies)
	w.publishDeb("BW-3", debtest.Package{Name: "bar", Version: "2.0", Files: map[string]string{"/usr/bin/bar-version": "2.0\n"},
		Postinst: "#!/bin/sh\nset -e\necho configured > \"$DPKG_ROOT/var/lib/bar-configured\"\n"}, "reboot: never\n")
	w.approve("web", "BW-1", "BW-2", "BW-3")

	root := filepath.Join(t.TempDir(), "root")
	if err := install.InitRoot(root); err != nil {
		t.Fatal(err)
	}
	debtest.AddShell(t, root)
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.WriteFile(filepath.Join(root, "etc", "os-release"), []byte("ID=debian\nVERSION_ID=\"12\"\n"), 0o644)
	m, err := facts.New(facts.Config{Root: root, Arch: "amd64"})
	if err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(t.TempDir(), "state")
	reboots := filepath.Join(t.TempDir(), "reboots")
	bootID := filepath.Join(t.TempDir(), "boot_id")
	os.WriteFile(bootID, []byte("boot-1"), 0o644)
	a, err := Open(Config{StateDir: state, Root: root, Now: w.clock,
		Policy:   Policy{Mode: ModeAuto, AutoInstallSeverity: "important"},
		Handlers: InstallHandlers(root, state, install.Options{}),
		Reboot:   Reboot{Command: []string{"sh", "-c", "echo reboot >> " + reboots}, BootIDPath: bootID}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	res, err := a.Cycle(context.Background(), w.sources(t.TempDir()), CycleOptions{AgentID: "agent-1", Facts: m})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(res.Pass.Installed, " "); got != "debian/BW-2 debian/BW-3" {
		t.Fatalf("installed %q, want BW-2 (the rollup) and BW-3; failed %v; states %+v", got, res.Pass.Failed, a.Updates())
	}
	b, _ := os.ReadFile(reboots)
	if strings.Count(string(b), "reboot") != 1 {
		t.Fatalf("reboot command called %d times, want exactly 1", strings.Count(string(b), "reboot"))
	}
	for file, want := range map[string]string{"usr/lib/libfoo.txt": "1.2\n", "usr/bin/bar-version": "2.0\n", "var/lib/bar-configured": "configured\n"} {
		if got, err := os.ReadFile(filepath.Join(root, file)); err != nil || string(got) != want {
			t.Fatalf("%s = %q, %v; want %q", file, got, err, want)
		}
	}
	for key, st := range map[string]State{"debian/BW-1": StateSuperseded, "debian/BW-2": StatePendingReboot, "debian/BW-3": StateInstalled} {
		if got := a.state(key).State; got != st {
			t.Errorf("%s: %s, want %s", key, got, st)
		}
	}
	// dpkg's own database agrees.
	if ok, v, _ := m.DebPackage("libfoo"); !ok || v != "1.2" {
		t.Fatalf("dpkg says libfoo installed=%v version %q", ok, v)
	}
	// A second cycle has nothing to do.
	res, err = a.Cycle(context.Background(), w.sources(t.TempDir()), CycleOptions{AgentID: "agent-1", Facts: m})
	if err != nil || len(res.Pass.Installed) != 0 {
		t.Fatalf("second cycle: %+v %v", res, err)
	}
}
