package install

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/catalog"
	"github.com/bulwarkhq/bulwark/internal/debtest"
	"github.com/bulwarkhq/bulwark/internal/facts"
)

// newRoot returns a directory root prepared for dpkg with a shell for
// maintainer scripts (debtest.AddShell).
func newRoot(t testing.TB) string {
	t.Helper()
	root := newBareRoot(t)
	debtest.AddShell(t, root)
	return root
}

// newBareRoot returns an empty directory root prepared for dpkg, without a
// shell.
func newBareRoot(t testing.TB) string {
	t.Helper()
	root := t.TempDir()
	if err := InitRoot(root); err != nil {
		t.Fatal(err)
	}
	return root
}

func handler(t testing.TB, typ string, opts Options) Handler {
	t.Helper()
	h, err := ForType(typ, opts)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// debUpdate is an update of type deb whose payloads are the given .deb files.
func debUpdate(id string, reboot catalog.Reboot, debs ...string) (*catalog.Update, map[string]string) {
	u := &catalog.Update{ID: id, Reboot: reboot, Installer: catalog.Installer{Type: catalog.InstallerDeb}, Uninstallable: true}
	paths := map[string]string{}
	for _, d := range debs {
		u.Payloads = append(u.Payloads, catalog.Payload{File: filepath.Base(d)})
		paths[filepath.Base(d)] = d
	}
	return u, paths
}

// pkgState returns dpkg's status line for name in root, or "" when absent.
func pkgState(t testing.TB, root, name string) (status, version string) {
	t.Helper()
	st, err := statusOf(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range st {
		if p.Name == name {
			return p.Status, p.Version
		}
	}
	return "", ""
}

func readFile(t testing.TB, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

const helloPostinst = `set -e
mkdir -p "$DPKG_ROOT/var/lib/hello"
echo "postinst $1 ${2:-none}" >> "$DPKG_ROOT/var/lib/hello/marker"
`
const helloPrerm = `set -e
echo "prerm $1" >> "$DPKG_ROOT/var/lib/hello/marker"
`

func helloDeb(t testing.TB, dir, version, depends string) string {
	t.Helper()
	return debtest.Build(t, dir, debtest.Package{
		Name: "bw-hello", Version: version, Depends: depends,
		Files:    map[string]string{"/usr/bin/bw-hello": "#!/bin/sh\necho " + version + "\n", "/usr/share/doc/bw-hello/VERSION": version + "\n"},
		Modes:    map[string]os.FileMode{"/usr/bin/bw-hello": 0o755},
		Postinst: helloPostinst, Prerm: helloPrerm,
	})
}

// TestDebInstallUpgradeUninstall installs a package whose postinst writes a
// marker under $DPKG_ROOT, upgrades it through a second update, and removes
// it, all with the real dpkg into a directory root.
func TestDebInstallUpgradeUninstall(t *testing.T) {
	ctx := context.Background()
	root, state, debs := newRoot(t), t.TempDir(), t.TempDir()
	h := handler(t, "deb", Options{})
	marker := filepath.Join(root, "var/lib/hello/marker")

	u1, p1 := debUpdate("BW-1", catalog.RebootNever, helloDeb(t, debs, "1.0-1", ""))
	res, err := h.Install(ctx, Request{Update: u1, Payloads: p1, Root: root, StateDir: state})
	if err != nil {
		t.Fatalf("install 1.0: %v", err)
	}
	if !strings.Contains(res.Output, "Setting up bw-hello (1.0-1)") || res.RebootRequired {
		t.Errorf("install 1.0: result %+v", res)
	}
	if got := readFile(t, marker); got != "postinst configure none\n" {
		t.Errorf("marker after install = %q; the postinst did not run under DPKG_ROOT", got)
	}
	if got := readFile(t, filepath.Join(root, "usr/share/doc/bw-hello/VERSION")); got != "1.0-1\n" {
		t.Errorf("installed file = %q", got)
	}
	if st, err := os.Stat(filepath.Join(root, "usr/bin/bw-hello")); err != nil || st.Mode().Perm() != 0o755 {
		t.Errorf("usr/bin/bw-hello: %v, %v", st, err)
	}
	m, err := facts.New(facts.Config{Root: root, Arch: "amd64"})
	if err != nil {
		t.Fatal(err)
	}
	if ok, v, err := m.DebPackage("bw-hello"); !ok || v != "1.0-1" || err != nil {
		t.Errorf("facts after install: %v %q %v", ok, v, err)
	}
	if _, err := os.Stat("/var/lib/hello"); err == nil {
		t.Error("the postinst wrote to the host's /var/lib/hello instead of the directory root")
	}
	if st, err := os.Stat(filepath.Join(state, "deb", "BW-1.json")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("install record: %v, %v; want a 0600 file", st, err)
	}
	if _, err := os.Stat(filepath.Join(root, "var/log/dpkg.log")); err != nil {
		t.Errorf("dpkg did not log into the root: %v", err)
	}

	u2, p2 := debUpdate("BW-2", catalog.RebootNever, helloDeb(t, debs, "2.0-1", ""))
	if _, err := h.Install(ctx, Request{Update: u2, Payloads: p2, Root: root, StateDir: state}); err != nil {
		t.Fatalf("upgrade to 2.0: %v", err)
	}
	if got := readFile(t, marker); got != "postinst configure none\nprerm upgrade\npostinst configure 1.0-1\n" {
		t.Errorf("marker after upgrade = %q", got)
	}
	if ok, v, _ := m.DebPackage("bw-hello"); !ok || v != "2.0-1" {
		t.Errorf("facts after upgrade: %v %q", ok, v)
	}

	// Removing BW-1 would remove 2.0, which BW-2 installed.
	_, err = h.Uninstall(ctx, Request{Update: u1, Payloads: p1, Root: root, StateDir: state})
	var f *Failure
	if !errors.As(err, &f) || !errors.Is(err, ErrChanged) || !strings.Contains(f.Reason, "now at version 2.0-1") {
		t.Fatalf("uninstall of the superseded update: err = %v; want a Failure saying the package is now 2.0-1", err)
	}

	notUninstallable := *u2
	notUninstallable.Uninstallable = false
	if _, err := h.Uninstall(ctx, Request{Update: &notUninstallable, Root: root, StateDir: state}); !errors.Is(err, ErrNotUninstallable) {
		t.Fatalf("uninstall of an update without uninstallable: err = %v; want ErrNotUninstallable", err)
	}

	// The payloads are gone by now (the agent deletes them); the record
	// says what to remove.
	res, err = h.Uninstall(ctx, Request{Update: u2, Root: root, StateDir: state})
	if err != nil {
		t.Fatalf("uninstall: %v", err)
	}
	if !strings.Contains(res.Output, "Removing bw-hello (2.0-1)") {
		t.Errorf("uninstall output = %q", res.Output)
	}
	if ok, _, _ := m.DebPackage("bw-hello"); ok {
		t.Error("bw-hello still installed after uninstall")
	}
	if _, err := os.Stat(filepath.Join(root, "usr/bin/bw-hello")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("usr/bin/bw-hello after uninstall: %v", err)
	}
	if got := readFile(t, marker); !strings.HasSuffix(got, "prerm remove\n") {
		t.Errorf("marker after uninstall = %q; the prerm did not run", got)
	}
	if _, err := os.Stat(filepath.Join(state, "deb", "BW-2.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("install record left after uninstall: %v", err)
	}
	// Again: nothing to do.
	if res, err := h.Uninstall(ctx, Request{Update: u2, Payloads: p2, Root: root, StateDir: state}); err != nil || !strings.Contains(res.Output, "nothing to remove") {
		t.Errorf("second uninstall = %+v, %v", res, err)
	}
}

// TestDebMissingDependency shows a package whose dependency is missing
// failing with dpkg's reason, and the root left as it was before.
func TestDebMissingDependency(t *testing.T) {
	ctx := context.Background()
	root, state, debs := newRoot(t), t.TempDir(), t.TempDir()
	h := handler(t, "deb", Options{})

	u, p := debUpdate("BW-NEEDY", catalog.RebootRequired, helloDeb(t, debs, "1.0-1", "bw-libfoo (>= 2)"))
	res, err := h.Install(ctx, Request{Update: u, Payloads: p, Root: root, StateDir: state})
	var f *Failure
	if !errors.As(err, &f) {
		t.Fatalf("install with a missing dependency: err = %v; want a *Failure", err)
	}
	for _, want := range []string{
		"dependency problems - leaving unconfigured",
		"bw-hello depends on bw-libfoo (>= 2); however: Package bw-libfoo is not installed.",
	} {
		if !strings.Contains(f.Reason, want) {
			t.Errorf("Failure.Reason = %q; want it to contain %q", f.Reason, want)
		}
	}
	if f.Update != "BW-NEEDY" || f.Step != "dpkg --install" || res.RebootRequired {
		t.Errorf("Failure = %+v, result %+v", f, res)
	}
	t.Logf("reason: %s", f.Reason)
	// The package this call introduced was purged again.
	if st, _ := pkgState(t, root, "bw-hello"); st != "" && !strings.HasSuffix(st, "not-installed") {
		t.Errorf("bw-hello status after the failed install = %q; want it gone", st)
	}
	if _, err := os.Stat(filepath.Join(root, "usr/bin/bw-hello")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("usr/bin/bw-hello after the failed install: %v; want it removed", err)
	}

	// An upgrade that fails cannot be undone: the old .deb is not at hand.
	// The Failure says what dpkg left, and installing the dependency and
	// the update again finishes it.
	u1, p1 := debUpdate("BW-OLD", catalog.RebootNever, helloDeb(t, t.TempDir(), "0.9-1", ""))
	if _, err := h.Install(ctx, Request{Update: u1, Payloads: p1, Root: root, StateDir: state}); err != nil {
		t.Fatal(err)
	}
	_, err = h.Install(ctx, Request{Update: u, Payloads: p, Root: root, StateDir: state})
	if !errors.As(err, &f) || !strings.Contains(f.Reason, "bw-hello left unpacked at 1.0-1 (0.9-1 was installed before") {
		t.Fatalf("failed upgrade: err = %v; want a Failure saying bw-hello was left unpacked", err)
	}
	if st, v := pkgState(t, root, "bw-hello"); st != "install ok unpacked" || v != "1.0-1" {
		t.Errorf("after the failed upgrade: %q %q", st, v)
	}
	lib, libp := debUpdate("BW-LIBFOO", catalog.RebootNever, debtest.Build(t, debs, debtest.Package{Name: "bw-libfoo", Version: "2.1-1"}))
	if _, err := h.Install(ctx, Request{Update: lib, Payloads: libp, Root: root, StateDir: state}); err != nil {
		t.Fatal(err)
	}
	res, err = h.Install(ctx, Request{Update: u, Payloads: p, Root: root, StateDir: state})
	if err != nil || !res.RebootRequired {
		t.Fatalf("install again after the dependency arrived: %+v, %v", res, err)
	}
	if st, v := pkgState(t, root, "bw-hello"); st != "install ok installed" || v != "1.0-1" {
		t.Errorf("after the dependency arrived: %q %q", st, v)
	}
}

// TestDebSeveralPayloadsOneCall installs two packages that depend on each
// other in one dpkg call, which only works because they go in together.
func TestDebSeveralPayloadsOneCall(t *testing.T) {
	ctx := context.Background()
	root, state, debs := newRoot(t), t.TempDir(), t.TempDir()
	a := debtest.Build(t, debs, debtest.Package{Name: "bw-app", Version: "1.0", Depends: "bw-lib (= 1.0)"})
	b := debtest.Build(t, debs, debtest.Package{Name: "bw-lib", Version: "1.0", Depends: "bw-app"})
	u, p := debUpdate("BW-PAIR", catalog.RebootNever, a, b)
	if _, err := handler(t, "deb", Options{}).Install(ctx, Request{Update: u, Payloads: p, Root: root, StateDir: state}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"bw-app", "bw-lib"} {
		if st, _ := pkgState(t, root, n); st != "install ok installed" {
			t.Errorf("%s: %q", n, st)
		}
	}
	if _, err := handler(t, "deb", Options{}).Uninstall(ctx, Request{Update: u, Root: root, StateDir: state}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"bw-app", "bw-lib"} {
		if st, _ := pkgState(t, root, n); strings.HasSuffix(st, " installed") {
			t.Errorf("%s after uninstall: %q", n, st)
		}
	}
}

func TestDebReboot(t *testing.T) {
	touch := `mkdir -p "$DPKG_ROOT/run"; touch "$DPKG_ROOT/run/reboot-required"`
	tests := []struct {
		name     string
		reboot   catalog.Reboot
		postinst string
		want     bool
	}{
		{"never", catalog.RebootNever, touch, false},
		{"required", catalog.RebootRequired, "", true},
		{"maybe_and_script_asks", catalog.RebootMaybe, touch, true},
		{"maybe_and_script_does_not_ask", catalog.RebootMaybe, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := newRoot(t)
			deb := debtest.Build(t, t.TempDir(), debtest.Package{Name: "bw-kernel", Version: "1", Postinst: tt.postinst})
			u, p := debUpdate("BW-R", tt.reboot, deb)
			res, err := handler(t, "deb", Options{}).Install(context.Background(), Request{Update: u, Payloads: p, Root: root, StateDir: t.TempDir()})
			if err != nil || res.RebootRequired != tt.want {
				t.Errorf("RebootRequired = %v, %v; want %v", res.RebootRequired, err, tt.want)
			}
		})
	}
}

func TestDebBadRequests(t *testing.T) {
	ctx := context.Background()
	deb := debtest.Build(t, t.TempDir(), debtest.Package{Name: "bw-x", Version: "1"})
	good, p := debUpdate("BW-X", catalog.RebootNever, deb)
	notDeb := &catalog.Update{ID: "BW-X", Installer: catalog.Installer{Type: "deb"}, Payloads: []catalog.Payload{{File: "x.tar.zst"}}}
	garbage := filepath.Join(t.TempDir(), "garbage.deb")
	os.WriteFile(garbage, []byte("!<arch>\nnot really"), 0o644)
	bad, bp := debUpdate("BW-G", catalog.RebootNever, garbage)
	tests := []struct {
		name string
		req  Request
		want string
	}{
		{"relative_root", Request{Update: good, Payloads: p, Root: "img", StateDir: t.TempDir()}, `root "img"`},
		{"missing_payload", Request{Update: good, Payloads: map[string]string{}, Root: newRoot(t), StateDir: t.TempDir()}, `payload "bw-x_1_all.deb" has no local file`},
		{"not_a_deb_name", Request{Update: notDeb, Payloads: map[string]string{"x.tar.zst": deb}, Root: newRoot(t), StateDir: t.TempDir()}, "takes only .deb files"},
		{"garbage_deb", Request{Update: bad, Payloads: bp, Root: newRoot(t), StateDir: t.TempDir()}, "payload garbage.deb: " + garbage + ": not a Debian binary package"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := handler(t, "deb", Options{}).Install(ctx, tt.req)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v; want one containing %q", err, tt.want)
			}
		})
	}
}

func TestForType(t *testing.T) {
	for _, typ := range []string{"deb", "archive"} {
		if _, err := ForType(typ, Options{}); err != nil {
			t.Errorf("ForType(%s): %v", typ, err)
		}
	}
	_, err := ForType("msi", Options{})
	if err == nil || !strings.Contains(err.Error(), `"msi"`) || !strings.Contains(err.Error(), "deb, archive") {
		t.Errorf("ForType(msi) err = %v; want one naming msi and the valid types", err)
	}
}

func TestInitRoot(t *testing.T) {
	root := t.TempDir()
	if err := InitRoot(root); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(root, "var/lib/dpkg/status"), []byte("Package: kept\nStatus: install ok installed\nVersion: 1\n"), 0o644)
	if err := InitRoot(root); err != nil {
		t.Fatal(err)
	}
	if st, _ := pkgState(t, root, "kept"); st == "" {
		t.Error("InitRoot replaced an existing status database")
	}
	for _, bad := range []string{"/", "relative"} {
		if err := InitRoot(bad); err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("InitRoot(%q) err = %v", bad, err)
		}
	}
}

func TestDpkgReason(t *testing.T) {
	out := `(Reading database ... 5 files and directories currently installed.)
Preparing to unpack foo2.deb ...
Unpacking foo (2.0) over (1.0) ...
dpkg: warning: something minor
dpkg: dependency problems prevent configuration of foo:
 foo depends on libfoo (>= 2); however:
  Package libfoo is not installed.

dpkg: error processing package foo (--install):
 dependency problems - leaving unconfigured
Errors were encountered while processing:
 foo`
	want := "error processing package foo (--install): dependency problems - leaving unconfigured; dependency problems prevent configuration of foo: foo depends on libfoo (>= 2); however: Package libfoo is not installed."
	if got := dpkgReason(out); got != want {
		t.Errorf("dpkgReason =\n%s\nwant\n%s", got, want)
	}
	if got := dpkgReason("a\nb\nc\nd\n"); got != "b c d" {
		t.Errorf("dpkgReason without dpkg messages = %q", got)
	}
}

func FuzzDpkgReason(f *testing.F) {
	f.Add("dpkg: error processing package foo (--install):\n dependency problems\n")
	f.Add("dpkg: warning: x\n\t\ny")
	f.Add("The following packages have unmet dependencies:\n foo : Depends: bar but it is not installable\nE: Unable to correct problems\n")
	f.Fuzz(func(t *testing.T, s string) {
		if r := dpkgReason(s); len(r) > len(s)+8*strings.Count(s, "\n")+8 {
			t.Fatalf("reason longer than its input: %q", r)
		}
		if r := toolReason(s); len(r) > 2*len(s)+40*strings.Count(s, "\n")+40 {
			t.Fatalf("tool reason out of proportion to its input: %q", r)
		}
	})
}

// TestDebScriptFailure: a postinst that fails is dpkg's reason, and the
// package it left half-configured is purged again.
func TestDebScriptFailure(t *testing.T) {
	root := newRoot(t)
	deb := debtest.Build(t, t.TempDir(), debtest.Package{Name: "bw-broken", Version: "1", Files: map[string]string{"/usr/share/bw-broken/x": "x"},
		Postinst: "echo 'cannot start service' >&2; exit 3"})
	u, p := debUpdate("BW-BROKEN", catalog.RebootNever, deb)
	_, err := handler(t, "deb", Options{}).Install(context.Background(), Request{Update: u, Payloads: p, Root: root, StateDir: t.TempDir()})
	var f *Failure
	if !errors.As(err, &f) || !strings.Contains(f.Reason, "post-installation script subprocess returned error exit status 3") {
		t.Fatalf("err = %v; want a Failure with dpkg's reason", err)
	}
	if st, _ := pkgState(t, root, "bw-broken"); st != "" && !strings.HasSuffix(st, "not-installed") {
		t.Errorf("bw-broken after the failure: %q; want it purged", st)
	}
	if _, err := os.Stat(filepath.Join(root, "usr/share/bw-broken/x")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("file left: %v", err)
	}
}

// TestDebCancel: the caller's context stops dpkg (here stuck in a
// maintainer script); the error is the context's, not a Failure, so the
// agent retries in its next pass rather than marking the update failed.
func TestDebCancel(t *testing.T) {
	root := newRoot(t)
	deb := debtest.Build(t, t.TempDir(), debtest.Package{Name: "bw-slow", Version: "1", Postinst: `touch "$DPKG_ROOT/started"; exec sleep 600`})
	u, p := debUpdate("BW-SLOW", catalog.RebootNever, deb)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		// Cancel once the postinst runs.
		for {
			if _, err := os.Stat(filepath.Join(root, "started")); err == nil {
				cancel()
				return
			}
			if ctx.Err() != nil {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	_, err := handler(t, "deb", Options{}).Install(ctx, Request{Update: u, Payloads: p, Root: root, StateDir: t.TempDir()})
	var f *Failure
	if !errors.Is(err, context.Canceled) || errors.As(err, &f) {
		t.Fatalf("err = %v; want context.Canceled and no Failure", err)
	}
	// dpkg-query, since dpkg's journal (updates/) may hold the last state.
	if out, err := exec.Command("dpkg-query", "--root="+root, "-W", "-f", "${db:Status-Status}", "bw-slow").Output(); err != nil || string(out) != "half-configured" {
		t.Errorf("bw-slow after the interruption: %q, %v; want half-configured", out, err)
	}
	// The script was stopped with dpkg, not left running (it ran
	// chrooted into root, which /proc/PID/root shows).
	out, _ := exec.Command("pgrep", "-f", "^sleep 600$").Output()
	for _, pid := range strings.Fields(string(out)) {
		if r, err := os.Readlink("/proc/" + pid + "/root"); err == nil && r == root {
			t.Errorf("maintainer script still running after cancel: pid %s", pid)
			exec.Command("kill", pid).Run()
		}
	}
	// The next install finishes the package.
	deb2 := debtest.Build(t, t.TempDir(), debtest.Package{Name: "bw-slow", Version: "1"})
	u2, p2 := debUpdate("BW-SLOW", catalog.RebootNever, deb2)
	if _, err := handler(t, "deb", Options{}).Install(context.Background(), Request{Update: u2, Payloads: p2, Root: root, StateDir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	if st, _ := pkgState(t, root, "bw-slow"); st != "install ok installed" {
		t.Errorf("bw-slow after installing again: %q", st)
	}
}

func TestBind(t *testing.T) {
	root, state := newRoot(t), t.TempDir()
	deb := debtest.Build(t, t.TempDir(), debtest.Package{Name: "bw-bound", Version: "1"})
	u, p := debUpdate("BW-BOUND", catalog.RebootRequired, deb)
	b := Bind(handler(t, "deb", Options{}), root, state)
	if reboot, err := b.Install(context.Background(), u, p); err != nil || !reboot {
		t.Fatalf("Install = %v, %v", reboot, err)
	}
	if st, _ := pkgState(t, root, "bw-bound"); st != "install ok installed" {
		t.Errorf("status %q", st)
	}
	if _, err := b.Uninstall(context.Background(), u, nil); err != nil {
		t.Fatal(err)
	}
	if st, _ := pkgState(t, root, "bw-bound"); strings.HasSuffix(st, " installed") {
		t.Errorf("status after uninstall %q", st)
	}
}

// TestDebNoShellRefused: a root without /bin/sh cannot run maintainer
// scripts inside it, and they are never run on the host: the install is
// refused before anything changes. A package without scripts installs.
func TestDebNoShellRefused(t *testing.T) {
	ctx := context.Background()
	root, state := newBareRoot(t), t.TempDir()
	h := handler(t, "deb", Options{})
	u, p := debUpdate("BW-SCRIPTED", catalog.RebootNever, helloDeb(t, t.TempDir(), "1.0-1", ""))
	_, err := h.Install(ctx, Request{Update: u, Payloads: p, Root: root, StateDir: state})
	if !errors.Is(err, ErrNoShell) || !strings.Contains(err.Error(), "bw-hello (postinst, prerm)") || !strings.Contains(err.Error(), root) {
		t.Fatalf("err = %v; want ErrNoShell naming the root, the package and its scripts", err)
	}
	if st, _ := pkgState(t, root, "bw-hello"); st != "" {
		t.Errorf("bw-hello after the refusal: %q", st)
	}
	plain, pp := debUpdate("BW-PLAIN", catalog.RebootNever, debtest.Build(t, t.TempDir(), debtest.Package{Name: "bw-plain", Version: "1", Files: map[string]string{"/usr/share/bw-plain/x": "x"}}))
	if _, err := h.Install(ctx, Request{Update: plain, Payloads: pp, Root: root, StateDir: state}); err != nil {
		t.Fatalf("a package without scripts in a root without a shell: %v", err)
	}
}

// TestDebPreDependsAcrossPayloads is the pam case with dpkg alone: the
// first payload pre-depends on the exact version of the second, which one
// dpkg --install of both in this order refuses ("pre-dependency problem").
// The handler installs the pre-dependency first.
func TestDebPreDependsAcrossPayloads(t *testing.T) {
	ctx := context.Background()
	root, state, debs := newRoot(t), t.TempDir(), t.TempDir()
	h := handler(t, "deb", Options{})
	mods := func(v string) string {
		return debtest.Build(t, debs, debtest.Package{Name: "bw-modules", Version: v, PreDepends: "bw-modules-bin (= " + v + ")", Files: map[string]string{"/usr/lib/bw/modules": v}})
	}
	bin := func(v string) string {
		return debtest.Build(t, debs, debtest.Package{Name: "bw-modules-bin", Version: v, Files: map[string]string{"/usr/lib/bw/bin": v}, Postinst: "true"})
	}
	u1, p1 := debUpdate("BW-PAM-1", catalog.RebootNever, mods("1"), bin("1"))
	if _, err := h.Install(ctx, Request{Update: u1, Payloads: p1, Root: root, StateDir: state}); err != nil {
		t.Fatal(err)
	}
	u2, p2 := debUpdate("BW-PAM-2", catalog.RebootNever, mods("2"), bin("2"))
	if _, err := h.Install(ctx, Request{Update: u2, Payloads: p2, Root: root, StateDir: state}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"bw-modules", "bw-modules-bin"} {
		if st, v := pkgState(t, root, n); st != "install ok installed" || v != "2" {
			t.Errorf("%s: %q %q", n, st, v)
		}
	}
}

// TestDebInstallBatch: two updates of one pass, the first pre-depending on
// the second's package, go in one transaction in the order that needs it;
// each update's result says whether its packages are installed, and a
// batch that fails as a whole falls back to one update at a time.
func TestDebInstallBatch(t *testing.T) {
	ctx := context.Background()
	root, state, debs := newRoot(t), t.TempDir(), t.TempDir()
	b := Bind(handler(t, "deb", Options{}), root, state)
	mods, mp := debUpdate("BW-MODS", catalog.RebootNever, debtest.Build(t, debs, debtest.Package{Name: "bw-modules", Version: "2", PreDepends: "bw-modules-bin (= 2)"}))
	bin, bp := debUpdate("BW-BIN", catalog.RebootRequired, debtest.Build(t, debs, debtest.Package{Name: "bw-modules-bin", Version: "2", Postinst: "true"}))
	reboot, errs := b.InstallBatch(ctx, []*catalog.Update{mods, bin}, []map[string]string{mp, bp})
	if errs[0] != nil || errs[1] != nil || reboot[0] || !reboot[1] {
		t.Fatalf("batch: reboot %v errs %v", reboot, errs)
	}
	for _, n := range []string{"bw-modules", "bw-modules-bin"} {
		if st, v := pkgState(t, root, n); st != "install ok installed" || v != "2" {
			t.Errorf("%s: %q %q", n, st, v)
		}
	}
	// One update needs a package nobody has: the transaction fails, and the
	// other update still installs on its own.
	needy, np := debUpdate("BW-NEEDY", catalog.RebootNever, helloDeb(t, debs, "1.0-1", "bw-nowhere"))
	fine, fp := debUpdate("BW-FINE", catalog.RebootNever, debtest.Build(t, debs, debtest.Package{Name: "bw-fine", Version: "1"}))
	_, errs = b.InstallBatch(ctx, []*catalog.Update{needy, fine}, []map[string]string{np, fp})
	var f *Failure
	if !errors.As(errs[0], &f) || !strings.Contains(f.Reason, "bw-nowhere") || errs[1] != nil {
		t.Fatalf("errs = %v; want BW-NEEDY failed naming bw-nowhere, BW-FINE installed", errs)
	}
	if st, _ := pkgState(t, root, "bw-fine"); st != "install ok installed" {
		t.Errorf("bw-fine: %q", st)
	}
}
