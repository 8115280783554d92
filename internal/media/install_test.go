package media

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/bulwarkhq/bulwark/internal/agent"
	"github.com/bulwarkhq/bulwark/internal/install"
	"github.com/bulwarkhq/bulwark/internal/tuf"
)

// debRoot is a directory root with its own dpkg database, like a machine.
func debRoot(t *testing.T) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "root")
	if err := install.InitRoot(root); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.WriteFile(filepath.Join(root, "etc", "os-release"), []byte("ID=debian\nVERSION_ID=\"12\"\n"), 0o644)
	return root
}

// A lone machine installs every applicable update from media, with real
// dpkg, in one pass with one reboot: the rollup BW-2 supersedes BW-1, BW-3
// installs, and the reboot command runs once. Running again installs
// nothing and does not reboot.
func TestInstallFromMediaOnePassOneReboot(t *testing.T) {
	f := newFixture(t)
	m := f.create(Selection{Security: true})
	root, state := debRoot(t), filepath.Join(t.TempDir(), "state")
	reboots := filepath.Join(t.TempDir(), "reboots")
	bootID := filepath.Join(t.TempDir(), "boot_id")
	os.WriteFile(bootID, []byte("boot-1\n"), 0o644)
	var steps []string
	o := InstallOptions{Media: m, Pins: f.pins(), StateDir: state, Root: root, Arch: "amd64",
		Reboot: agent.Reboot{Command: []string{"sh", "-c", "echo reboot >> " + reboots}, BootIDPath: bootID},
		Step:   func(key, phase string) { steps = append(steps, phase+" "+key) }}
	res, err := Install(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Cycle.Pass.Installed, []string{"debian/BW-2", "debian/BW-3"}) || !res.Cycle.Pass.Rebooted {
		t.Fatalf("pass: %+v", res.Cycle.Pass)
	}
	if !slices.Contains(steps, "install debian/BW-3") {
		t.Fatalf("no progress for BW-3: %v", steps)
	}
	b, _ := os.ReadFile(reboots)
	if n := strings.Count(string(b), "reboot"); n != 1 {
		t.Fatalf("reboot command ran %d times, want 1", n)
	}
	for file, want := range map[string]string{"usr/lib/libfoo.txt": "1.2\n", "usr/bin/bar-version": "2.0\n"} {
		if got, err := os.ReadFile(filepath.Join(root, file)); err != nil || string(got) != want {
			t.Fatalf("%s = %q %v, want %q", file, got, err, want)
		}
	}
	os.WriteFile(bootID, []byte("boot-2\n"), 0o644)
	res, err = Install(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Cycle.Pass.Installed) != 0 || res.Cycle.Pass.Rebooted {
		t.Fatalf("second run: %+v", res.Cycle.Pass)
	}
	b, _ = os.ReadFile(reboots)
	if n := strings.Count(string(b), "reboot"); n != 1 {
		t.Fatalf("after the second run the reboot command ran %d times, want 1", n)
	}
}

// With the site root pinned, the group's approvals are followed (BW-2 and
// BW-3 only) and must agree with the vendor's metadata.
func TestInstallFromMediaFollowsSiteApprovals(t *testing.T) {
	f := newFixture(t)
	m := f.create(Selection{Groups: []string{"web"}})
	root := debRoot(t)
	res, err := Install(context.Background(), InstallOptions{Media: m, Pins: f.pins(), Site: tuf.RootFingerprint(f.root(f.site)),
		StateDir: filepath.Join(t.TempDir(), "state"), Root: root, Arch: "amd64"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Cycle.Pass.Installed, []string{"debian/BW-2", "debian/BW-3"}) {
		t.Fatalf("pass: %+v", res.Cycle.Pass)
	}
}

// Media whose vendor root is not the pinned one install nothing.
func TestAttackInstallFromMediaWithForeignPin(t *testing.T) {
	f := newFixture(t)
	m := f.create(Selection{Security: true})
	root := debRoot(t)
	_, err := Install(context.Background(), InstallOptions{Media: m, Pins: map[string]string{"debian": tuf.RootFingerprint([]byte("another root"))},
		StateDir: filepath.Join(t.TempDir(), "state"), Root: root, Arch: "amd64"})
	if err == nil || !strings.Contains(err.Error(), "a foreign root") {
		t.Fatalf("err = %v, want the foreign root refused", err)
	}
	if _, err := os.Stat(filepath.Join(root, "usr/bin/bar-version")); err == nil {
		t.Fatal("installed from media with a foreign root")
	}
}
