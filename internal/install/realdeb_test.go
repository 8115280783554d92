package install

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/bulwarkhq/bulwark/internal/catalog"
	"github.com/bulwarkhq/bulwark/internal/debpkg"
	"github.com/bulwarkhq/bulwark/internal/debtest"
)

// chrootRun runs a command inside root and returns its output.
func chrootRun(t testing.TB, root string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("chroot", append([]string{root}, args...)...)
	cmd.Env = toolEnv()
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// checkClean fails t unless dpkg --audit finds nothing and apt-get -s
// upgrade resolves in root.
func checkClean(t testing.TB, root string) {
	t.Helper()
	if out, err := chrootRun(t, root, "dpkg", "--audit"); err != nil || strings.TrimSpace(out) != "" {
		t.Errorf("dpkg --audit in the root: %v\n%s", err, out)
	}
	if out, err := chrootRun(t, root, "apt-get", "-s", "-o", "Debug::NoLocking=1", "upgrade"); err != nil || strings.Contains(out, "unmet") {
		t.Errorf("apt-get -s upgrade in the root: %v\n%s", err, out)
	}
}

// checkUpgraded fails t unless every package of debs is installed in root
// at the .deb's version and that version is not the one installed before.
func checkUpgraded(t testing.TB, root string, before map[string]string, debs []string) {
	t.Helper()
	for _, d := range debs {
		info, err := debpkg.ReadFile(d)
		if err != nil {
			t.Fatal(err)
		}
		st, v := pkgState(t, root, info.Name)
		if st != "install ok installed" || v != info.Version {
			t.Errorf("%s: %q %q; want installed at %s", info.Name, st, v, info.Version)
		}
		if before[info.Name] == info.Version {
			t.Errorf("%s was at %s before: the test root does not really upgrade it (rebuild the root or download newer packages)", info.Name, info.Version)
		}
	}
}

func versions(t testing.TB, root string) map[string]string {
	t.Helper()
	st, err := statusOf(root)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, p := range st {
		if p.Installed() {
			m[p.Name] = p.Version
		}
	}
	return m
}

var pamDebs = []string{"libpam-modules", "libpam-modules-bin", "libpam0g", "libpam-runtime"}

// TestRealDebPam is the update that failed half-way when all payloads went
// into one dpkg --install: libpam-modules pre-depends on libpam-modules-bin
// of the same version. Listed in the order that broke it, with apt (the
// root's own, chrooted) and with dpkg alone; both leave every package
// upgraded and dpkg --audit and apt-get -s upgrade clean.
func TestRealDebPam(t *testing.T) {
	for _, tt := range []struct {
		name string
		opts Options
		step string
	}{{"apt", Options{}, "apt-get"}, {"dpkg", Options{NoApt: true}, "dpkg"}} {
		t.Run(tt.name, func(t *testing.T) {
			root := debtest.DebianRoot(t)
			before := versions(t, root)
			debs := debtest.RealDebs(t, pamDebs...)
			u, p := debUpdate("DSA-PAM", catalog.RebootNever, debs...)
			res, err := handler(t, "deb", tt.opts).Install(context.Background(), Request{Update: u, Payloads: p, Root: root, StateDir: t.TempDir()})
			if err != nil {
				t.Fatalf("install: %v\n%s", err, res.Output)
			}
			checkUpgraded(t, root, before, debs)
			checkClean(t, root)
			if _, err := os.Stat(filepath.Join(root, "var/cache")); err != nil {
				t.Fatal(err)
			}
			if m, _ := filepath.Glob(filepath.Join(root, "var/cache/bulwark-install-*")); len(m) != 0 {
				t.Errorf("staged payloads left in the root: %v", m)
			}
		})
	}
}

// TestRealDebHostUntouched installs real packages whose maintainer scripts
// rebuild state (ca-certificates regenerates /etc/ssl/certs; openssl and
// libssl3 trigger ldconfig) into a directory root, in a private mount
// namespace where the host's /etc, /usr and /var are overlaid with empty
// tmpfs upper layers: anything the install wrote to the host would show up
// in an upper layer. With scripts run chrootless on the host (dpkg
// --force-script-chrootless, as before), ca-certificates' postinst rewrote
// the host's /etc/ca-certificates.conf and bundle.
func TestRealDebHostUntouched(t *testing.T) {
	if os.Getenv("BULWARK_TEST_IN_OVERLAY") == "" {
		debtest.RealDebs(t, "ca-certificates", "openssl", "libssl3") // fails with the reason when missing
		if os.Getenv("BULWARK_TEST_DEBIAN_ROOT") == "" {
			debtest.DebianRoot(t) // fails with the reason
		}
		cmd := exec.Command("unshare", "--mount", "--propagation", "private", os.Args[0], "-test.run=^TestRealDebHostUntouched$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), "BULWARK_TEST_IN_OVERLAY=1")
		out, err := cmd.CombinedOutput()
		t.Logf("in a private mount namespace:\n%s", out)
		if err != nil || !bytes.Contains(out, []byte("--- PASS: TestRealDebHostUntouched")) {
			t.Fatalf("the namespaced run failed: %v", err)
		}
		return
	}
	// In the namespace: tmpfs for the upper layers, then /etc, /usr, /var.
	ovl := t.TempDir()
	if err := syscall.Mount("tmpfs", ovl, "tmpfs", 0, "mode=0700"); err != nil {
		t.Fatalf("mount tmpfs: %v", err)
	}
	dirs := []string{"/etc", "/usr", "/var"}
	for _, d := range dirs {
		up, work := filepath.Join(ovl, d, "up"), filepath.Join(ovl, d, "work")
		os.MkdirAll(up, 0o755)
		os.MkdirAll(work, 0o755)
		if err := syscall.Mount("overlay", d, "overlay", 0, "lowerdir="+d+",upperdir="+up+",workdir="+work); err != nil {
			t.Fatalf("overlay %s: %v", d, err)
		}
	}
	t.Cleanup(func() {
		for _, d := range dirs {
			syscall.Unmount(d, syscall.MNT_DETACH)
		}
		syscall.Unmount(ovl, syscall.MNT_DETACH)
	})
	root := debtest.DebianRoot(t)
	before := versions(t, root)
	bundle := filepath.Join(root, "etc/ssl/certs/ca-certificates.crt")
	oldBundle, _ := os.ReadFile(bundle)
	debs := debtest.RealDebs(t, "ca-certificates", "openssl", "libssl3")
	u, p := debUpdate("DSA-SSL", catalog.RebootNever, debs...)
	res, err := handler(t, "deb", Options{}).Install(context.Background(), Request{Update: u, Payloads: p, Root: root, StateDir: t.TempDir()})
	if err != nil {
		t.Fatalf("install: %v\n%s", err, res.Output)
	}
	checkUpgraded(t, root, before, debs)
	checkClean(t, root)
	newBundle, err := os.ReadFile(bundle)
	if err != nil || bytes.Equal(oldBundle, newBundle) {
		t.Errorf("the root's CA bundle did not change (%v): ca-certificates' postinst did not rebuild it inside the root", err)
	}
	for _, d := range dirs {
		up := filepath.Join(ovl, d, "up")
		filepath.WalkDir(up, func(p string, e fs.DirEntry, err error) error {
			if err == nil && p != up {
				t.Errorf("the install wrote to the host: %s", filepath.Join(d, strings.TrimPrefix(p, up)))
			}
			return nil
		})
	}
}
