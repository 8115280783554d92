//go:build !agentonly

package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestLockdownNewcomerOnDebianRoot is the "done when": on a real
// Debian 12 root (see scripts/setup.d/lockdown.sh), audit small-business and
// read what fails and why, apply, audit again and see it pass, undo, and find
// every file under /etc as it was.
func TestLockdownNewcomerOnDebianRoot(t *testing.T) {
	src := os.Getenv("BULWARK_TEST_DEBIAN_ROOT")
	if src == "" {
		if testing.Short() {
			t.Skip("-short: no Debian root")
		}
		t.Fatal("BULWARK_TEST_DEBIAN_ROOT is not set: run scripts/test, which builds a Debian 12 root with debootstrap, or set it to such a root (go test -short skips this test)")
	}
	dir := t.TempDir()
	root, state := filepath.Join(dir, "root"), filepath.Join(dir, "state")
	if out, err := exec.Command("cp", "-a", src, root).CombinedOutput(); err != nil {
		t.Fatalf("copy Debian root: %v: %s", err, out)
	}
	before := etcSnapshot(t, root)

	out, code := runBulwark(t, "lockdown", "audit", "--profile", "small-business", "--root", root)
	if code != 2 {
		t.Fatalf("audit of a stock root: exit %d, want 2 (failures)\n%s", code, out)
	}
	for _, want := range []string{
		"fail          high   ssh-permit-root-login",
		"found prohibit-password (sshd default), want no",
		"found 99999 (/etc/login.defs:165), want between 1 and 365",
		"why: ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("audit output lacks %q:\n%s", want, out)
		}
	}

	out, code = runBulwark(t, "lockdown", "apply", "--profile", "small-business", "--root", root, "--state-dir", state)
	if code != 0 {
		t.Fatalf("apply: exit %d\n%s", code, out)
	}
	for _, want := range []string{"+PermitRootLogin no", "note: sshd -t: ok", "fixed         high   ssh-permit-root-login"} {
		if !strings.Contains(out, want) {
			t.Errorf("apply output lacks %q:\n%s", want, out)
		}
	}

	out, code = runBulwark(t, "lockdown", "audit", "--profile", "small-business", "--root", root)
	if code != 0 || strings.Contains(out, "\nfail ") {
		t.Errorf("audit after apply: exit %d\n%s", code, out)
	}

	out, code = runBulwark(t, "lockdown", "undo", "--state-dir", state)
	if code != 0 || !strings.Contains(out, "Undid run") {
		t.Fatalf("undo: exit %d\n%s", code, out)
	}
	after := etcSnapshot(t, root)
	for p, b := range before {
		if after[p] != b {
			t.Errorf("%s: %s, was %s", p, after[p], b)
		}
	}
	for p, a := range after {
		if _, ok := before[p]; !ok {
			t.Errorf("%s: left behind (%s)", p, a)
		}
	}
}

func runBulwark(t testing.TB, args ...string) (string, int) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), args, strings.NewReader(""), &stdout, &stderr)
	out := stdout.String() + stderr.String()
	switch e := err.(type) {
	case nil:
		return out, 0
	case exitCode:
		return out, int(e)
	default:
		return out + err.Error(), 1
	}
}

// etcSnapshot describes every path under root/etc: type, mode, owner, link
// target and content hash.
func etcSnapshot(t testing.TB, root string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(filepath.Join(root, "etc"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		desc := fmt.Sprintf("%v %d:%d", fi.Mode(), st.Uid, st.Gid)
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			desc += " -> " + target
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			desc += fmt.Sprintf(" %x", sha256.Sum256(b))
		}
		m[strings.TrimPrefix(p, root)] = desc
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestConfirmChanges(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want bool
	}{{"y\n", true}, {"yes\n", true}, {"n\n", false}, {"\n", false}, {"", false}, {"maybe\n", false}} {
		var out bytes.Buffer
		got, err := confirmChanges(strings.NewReader(tt.in), &out)(nil)
		if err != nil || got != tt.want {
			t.Errorf("answer %q: %v %v, want %v", tt.in, got, err, tt.want)
		}
		if !strings.Contains(out.String(), "[y/N]") {
			t.Errorf("no question asked: %q", out.String())
		}
	}
}

// TestConfirmInstallAfterChanges: the package question reads the line after
// the answer to the changes question, so both answers can come from one
// piped input.
func TestConfirmInstallAfterChanges(t *testing.T) {
	for _, tt := range []struct {
		in                string
		changes, packages bool
	}{{"y\ny\n", true, true}, {"y\nn\n", true, false}, {"yes\n", true, false}, {"n\ny\n", false, true}} {
		var out bytes.Buffer
		in := strings.NewReader(tt.in)
		gotC, _ := confirmChanges(in, &out)(nil)
		gotP, _ := confirmInstall(in, &out)([]string{"aide", "fail2ban"})
		if gotC != tt.changes || gotP != tt.packages {
			t.Errorf("answers %q: changes %v, packages %v; want %v, %v", tt.in, gotC, gotP, tt.changes, tt.packages)
		}
		if !strings.Contains(out.String(), "Install these 2 packages with apt-get (and what they depend on): aide fail2ban? [y/N]") {
			t.Errorf("package question not asked: %q", out.String())
		}
	}
}
