package lockdown

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestDebianRootFaillock applies sysadmin's account lockout to the Debian
// root: the root's own pam-auth-update writes common-auth and
// common-account from Bulwark's pam-configs profiles; through the root's
// PAM stack (pamtester) a user is locked after five failed logins while
// root still gets in; a later pam-auth-update run (a package upgrade)
// keeps the stack; undo restores every file pam-auth-update touched, byte
// for byte, with its modification time.
func TestDebianRootFaillock(t *testing.T) {
	root, c, e, _ := debianFixture(t)
	ctx := context.Background()
	pamDirs := []string{"usr/share/pam-configs", "var/lib/pam", "var/cache/debconf"}
	const userPass, rootPass = "Correct-Horse-Battery-41", "Staple-Orbit-Lantern-77"
	if out, err := chrootRun(t, root, "alice:"+userPass+"\nroot:"+rootPass+"\n", "sh", "-c", "useradd --create-home alice && chpasswd"); err != nil {
		t.Fatalf("useradd: %v\n%s", err, out)
	}
	orig, origPAM := snapshot(t, root), snapshotOf(t, root, pamDirs...)
	state := t.TempDir()
	rep, err := e.Apply(ctx, selectProfile(t, c, "sysadmin"), root, ApplyOptions{StateDir: state})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rep.Results {
		if strings.HasPrefix(r.ID, "faillock-") || r.ID == "pam-faillock" {
			if r.Result != ResultFixed && r.Result != ResultPass {
				t.Errorf("%s: %s %s", r.ID, r.Result, r.Note)
			}
		}
	}
	auth, _ := os.ReadFile(filepath.Join(root, "etc/pam.d/common-auth"))
	if !strings.Contains(string(auth), "pam_faillock.so preauth") || !strings.Contains(string(auth), "[success=3 default=ignore]\tpam_unix.so") {
		t.Fatalf("common-auth after apply:\n%s", auth)
	}
	// One chroot for all attempts: the tally lives in /run/faillock.
	script := `try() { printf '%s\n' "$3" | pamtester "$1" "$2" authenticate >/dev/null 2>&1 && echo "$1 $2 in" || echo "$1 $2 refused"; }
try login alice "$A"
for i in 1 2 3 4 5; do try login alice wrong-$i; done
try login alice "$A"
try sshd alice "$A"
try login root "$R"
try su root "$R"
faillock --user alice | grep -c '^[0-9]'`
	out, err := chrootRun(t, root, "", "env", "A="+userPass, "R="+rootPass, "sh", "-c", script)
	if err != nil {
		t.Fatalf("pamtester: %v\n%s", err, out)
	}
	want := "login alice in\n" + strings.Repeat("login alice refused\n", 5) + "login alice refused\nsshd alice refused\nlogin root in\nsu root in\n"
	if !strings.HasPrefix(out, want) {
		t.Fatalf("through the root's PAM stack:\n%s\nwant first:\n%s", out, want)
	}

	// A package upgrade runs pam-auth-update --package: the stack stays
	// (on a copy: the upgrade rewrites files, which undo would rightly
	// refuse to overwrite).
	up := filepath.Join(t.TempDir(), "upgraded")
	if out, err := exec.Command("cp", "-a", root, up).CombinedOutput(); err != nil {
		t.Fatalf("copy: %v %s", err, out)
	}
	if out, err := chrootRun(t, up, "", "env", "DEBIAN_FRONTEND=noninteractive", "pam-auth-update", "--package"); err != nil || strings.Contains(out, "Local modifications") {
		t.Fatalf("pam-auth-update --package after apply: %v\n%s", err, out)
	}
	if again, _ := os.ReadFile(filepath.Join(up, "etc/pam.d/common-auth")); string(again) != string(auth) {
		t.Fatalf("a later pam-auth-update changed common-auth:\n%s\nwas:\n%s", again, auth)
	}

	if _, err := e.Undo(ctx, state, rep.Run, false); err != nil {
		t.Fatal(err)
	}
	diffSnapshots(t, orig, snapshot(t, root))
	// sysadmin also installed libpam-tmpdir, whose install and purge ran
	// pam-auth-update and changed debconf's database: undo brings both back
	// exactly, but debconf's own backups of its previous state (*-old) hold
	// what the purge replaced, and undo does not claim them (docs/LOCKDOWN.md,
	// "Packages").
	afterPAM := snapshotOf(t, root, pamDirs...)
	for _, p := range []string{"/var/cache/debconf/config.dat-old", "/var/cache/debconf/templates.dat-old"} {
		if origPAM[p].Exists() && afterPAM[p].Exists() {
			afterPAM[p] = origPAM[p]
		}
	}
	diffSnapshots(t, origPAM, afterPAM)
}
