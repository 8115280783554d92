package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/bulwarkhq/bulwark/internal/agent"
	"github.com/bulwarkhq/bulwark/internal/debpkg"
	"github.com/bulwarkhq/bulwark/internal/debtest"
	"github.com/bulwarkhq/bulwark/internal/facts"
	"github.com/bulwarkhq/bulwark/internal/tuf"
)

func inRoot(t *testing.T, root string, args ...string) string {
	t.Helper()
	cmd := exec.Command("chroot", append([]string{root}, args...)...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND=noninteractive", "LC_ALL=C"}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("chroot %s %s: %v\n%s", root, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// realUpdate is one real Debian security update made of .debs from
// BULWARK_TEST_DEBS.
type realUpdate struct {
	id, reboot string
	pkgs       []string
	applies    string // applies_to YAML, optional
}

// The "done when" against real packages: a vendor publishes real
// bookworm security updates (pam as one update of four packages that
// pre-depend on each other, openssl with libssl3, ca-certificates whose
// postinst rebuilds /etc/ssl/certs, tzdata), the server serves them, a
// group approves them, and an agent with a debootstrapped bookworm root,
// half-upgraded by an earlier broken pam install, installs them in one pass. The root must then equal a copy of the same
// root into which `apt-get install` put the same .debs: the dpkg status of
// every package, every file of the updated packages, the CA bundle the
// maintainer scripts generated; dpkg --audit and apt-get -s upgrade are
// clean in both; two updates need a reboot and the agent calls for exactly
// one.
func TestRealDebianUpdatesEqualApt(t *testing.T) {
	ctx := context.Background()
	pam0g, err := debpkg.ReadFile(debtest.RealDebs(t, "libpam0g")[0])
	if err != nil {
		t.Fatal(err)
	}
	updates := []realUpdate{
		// applies_to names libpam0g only, as publishers write it: once a
		// half-done install upgraded libpam0g it no longer holds, and only
		// the payloads' packages say the update is not done.
		{"DSA-PAM", "required", []string{"libpam-modules", "libpam0g", "libpam-runtime", "libpam-modules-bin"},
			"applies_to: [{deb: {package: libpam0g, version_lt: " + quoteYAML(pam0g.Version) + "}}]\n"},
		{"DSA-OPENSSL", "required", []string{"openssl", "libssl3"}, ""},
		{"DSA-CA", "never", []string{"ca-certificates"}, ""},
		{"DLA-TZDATA", "never", []string{"tzdata"}, ""},
	}
	var all []string
	vendorDir := filepath.Join(t.TempDir(), "vendor")
	vr, err := tuf.Init(vendorDir, tuf.InitOptions{Name: "debian", BinBits: 4}, tuf.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range updates {
		dir := t.TempDir()
		var payloads []string
		for _, p := range debtest.RealDebs(t, u.pkgs...) {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			os.WriteFile(filepath.Join(dir, filepath.Base(p)), b, 0o644)
			payloads = append(payloads, "{file: "+quoteYAML(filepath.Base(p))+"}")
			all = append(all, p)
		}
		y := filepath.Join(dir, u.id+".yaml")
		os.WriteFile(y, []byte(fmt.Sprintf("id: %s\ntitle: %s\nproduct: debian-12\nclassification: security\nseverity: critical\nreleased: 2026-11-20\ninstaller: {type: deb}\nreboot: %s\npayloads: [%s]\n%s",
			u.id, strings.Join(u.pkgs, ", "), u.reboot, strings.Join(payloads, ", "), u.applies)), 0o644)
		if _, err := vr.Publish(ctx, y, tuf.PublishOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	vr.Close()

	// The reference: apt-get install of the same files into a copy.
	ref := debtest.DebianRoot(t)
	before := dpkgStatus(t, ref)
	staged := filepath.Join(ref, "tmp", "debs")
	os.MkdirAll(staged, 0o755)
	args := []string{"apt-get", "install", "-y", "-q", "-o", "Dpkg::Use-Pty=0", "-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold"}
	for _, d := range all {
		b, _ := os.ReadFile(d)
		os.WriteFile(filepath.Join(staged, filepath.Base(d)), b, 0o644)
		args = append(args, "/tmp/debs/"+filepath.Base(d))
	}
	t.Logf("apt-get install in the reference root:\n%s", tail(inRoot(t, ref, args...), 6))
	os.RemoveAll(staged)

	// The agent's machine, left half-upgraded the way one dpkg --install of
	// the pam update left it: three packages at the new version,
	// libpam-modules (with the fix) at the old one.
	root := debtest.DebianRoot(t)
	half := filepath.Join(root, "tmp", "half")
	os.MkdirAll(half, 0o755)
	dpkgArgs := []string{"dpkg", "--install"}
	for _, d := range debtest.RealDebs(t, "libpam0g", "libpam-modules-bin", "libpam-runtime") {
		b, _ := os.ReadFile(d)
		os.WriteFile(filepath.Join(half, filepath.Base(d)), b, 0o644)
		dpkgArgs = append(dpkgArgs, "/tmp/half/"+filepath.Base(d))
	}
	inRoot(t, root, dpkgArgs...)
	os.RemoveAll(half)
	if out := inRoot(t, root, "dpkg-query", "-W", "libpam0g", "libpam-modules"); !strings.Contains(out, pam0g.Version) || strings.Count(out, pam0g.Version) != 1 {
		t.Fatalf("the half-upgraded root is not half-upgraded:\n%s", out)
	}
	ids := make([]string, len(updates))
	for i, u := range updates {
		ids[i] = u.id
	}
	srv, adm, tok := startServer(t, vendorDir, ids...)
	e, settings, reboots, _ := enroll(t, srv, tok, root, "auto")
	d, _, closeAgent, err := agent.Build(settings, "amd64", "test", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { closeAgent() }()
	if err := d.CheckIn(ctx); err != nil {
		t.Fatal(err)
	}
	for _, r := range d.Updates() {
		t.Logf("agent: %s %s %s", r.Key, r.State, r.Reason)
	}
	if b, _ := os.ReadFile(reboots); strings.Count(string(b), "reboot") != 1 {
		t.Errorf("reboot command called %d times, want 1", strings.Count(string(b), "reboot"))
	}
	var comp struct {
		Updates []struct{ Vendor, ID, State, Reason string } `json:"updates"`
	}
	json.Unmarshal(adm.do("GET", "/api/v1/computers/"+e.AgentID, nil, http.StatusOK), &comp)
	for _, u := range comp.Updates {
		want := "installed"
		if u.ID == "DSA-PAM" || u.ID == "DSA-OPENSSL" {
			want = "installed-pending-reboot"
		}
		if u.State != want {
			t.Errorf("server shows %s %s (%s), want %s", u.ID, u.State, u.Reason, want)
		}
	}
	if len(comp.Updates) != len(updates) {
		t.Errorf("server shows %d updates, want %d: %+v", len(comp.Updates), len(updates), comp.Updates)
	}

	// The two roots.
	got, want := dpkgStatus(t, root), dpkgStatus(t, ref)
	changed := 0
	for k, w := range want {
		if got[k] != w {
			t.Errorf("dpkg status of %s: agent %q, apt %q", k, got[k], w)
		}
		if before[k] != w {
			changed++
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("dpkg status of %s: agent %q, apt has no such package", k, g)
		}
	}
	if changed < len(all) {
		t.Errorf("apt changed %d packages, want at least the %d payloads: the root does not really upgrade them (rebuild it or download newer packages)", changed, len(all))
	}
	for _, name := range pkgNames(all) {
		list := strings.Fields(inRoot(t, ref, "dpkg-query", "-L", name))
		compareFiles(t, root, ref, list)
	}
	// State the maintainer scripts made, owned by no package.
	var certs []string
	filepath.WalkDir(filepath.Join(ref, "etc/ssl/certs"), func(p string, _ fs.DirEntry, err error) error {
		if err == nil {
			certs = append(certs, strings.TrimPrefix(p, ref))
		}
		return nil
	})
	compareFiles(t, root, ref, append(certs, "/etc/ca-certificates.conf", "/etc/localtime", "/etc/timezone", "/etc/pam.d/common-auth"))
	for _, r := range []string{root, ref} {
		if out := inRoot(t, r, "dpkg", "--audit"); strings.TrimSpace(out) != "" {
			t.Errorf("dpkg --audit in %s:\n%s", r, out)
		}
		if out := inRoot(t, r, "apt-get", "-s", "-o", "Debug::NoLocking=1", "upgrade"); strings.Contains(out, "unmet") || !strings.Contains(out, "0 upgraded, 0 newly installed, 0 to remove") {
			t.Errorf("apt-get -s upgrade in %s:\n%s", r, out)
		}
	}
}

// dpkgStatus returns "version status" of every package in root's dpkg
// database, by name:arch.
func dpkgStatus(t *testing.T, root string) map[string]string {
	t.Helper()
	list, err := facts.ReadDatabase(root)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, p := range list {
		m[p.Name+":"+p.Arch] = p.Version + " " + p.Status
	}
	return m
}

// compareFiles fails t for every path (absolute, inside the roots) whose
// type, mode, link target or content differs between the roots.
func compareFiles(t *testing.T, got, want string, paths []string) {
	t.Helper()
	sort.Strings(paths)
	for _, p := range paths {
		a, b := describe(filepath.Join(got, p)), describe(filepath.Join(want, p))
		if a != b {
			t.Errorf("%s: agent %s, apt %s", p, a, b)
		}
	}
}

func describe(p string) string {
	st, err := os.Lstat(p)
	if err != nil {
		return "missing"
	}
	switch {
	case st.Mode()&fs.ModeSymlink != 0:
		l, _ := os.Readlink(p)
		return "link to " + l
	case st.IsDir():
		return fmt.Sprintf("dir %v", st.Mode())
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return err.Error()
	}
	sum := sha256.Sum256(b)
	return fmt.Sprintf("file %v %s", st.Mode(), hex.EncodeToString(sum[:8]))
}

// pkgNames returns the package names of .deb files named NAME_VERSION_ARCH.deb.
func pkgNames(debs []string) []string {
	var out []string
	for _, d := range debs {
		out = append(out, strings.SplitN(filepath.Base(d), "_", 2)[0])
	}
	return out
}

func quoteYAML(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
