package lockdown

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// chrootRun runs a program inside root, in a private mount namespace with a
// fresh /run, feeding it stdin.
func chrootRun(t testing.TB, root, stdin string, args ...string) (string, error) {
	t.Helper()
	script := `mount -t tmpfs bulwark-run "$1/run" && root="$1" && shift && exec chroot "$root" "$@"`
	cmd := exec.Command("unshare", append([]string{"--mount", "--propagation", "private", "sh", "-c", script, "sh", root}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestDebianRootPAMStillAuthenticates applies sysadmin (password quality,
// login.defs, shell settings) and then authenticates through the root's own
// PAM stacks with pamtester: root and a normal user still get in with their
// passwords, and a wrong password is still refused.
func TestDebianRootPAMStillAuthenticates(t *testing.T) {
	root, c, e, _ := debianFixture(t)
	ctx := context.Background()
	const userPass, rootPass = "Correct-Horse-Battery-41", "Staple-Orbit-Lantern-77"
	if out, err := chrootRun(t, root, "", "useradd", "--create-home", "--shell", "/bin/bash", "alice"); err != nil {
		t.Fatalf("useradd: %v\n%s", err, out)
	}
	if out, err := chrootRun(t, root, "alice:"+userPass+"\nroot:"+rootPass+"\n", "chpasswd"); err != nil {
		t.Fatalf("chpasswd: %v\n%s", err, out)
	}
	rep, err := e.Apply(ctx, selectProfile(t, c, "sysadmin"), root, ApplyOptions{StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	changed := map[string]bool{}
	for _, ch := range rep.Changes {
		changed[ch.Path] = true
	}
	for _, p := range []string{"/etc/security/pwquality.conf", "/etc/login.defs", "/etc/profile"} {
		if !changed[p] {
			t.Errorf("apply sysadmin did not change %s; the test would prove nothing about it", p)
		}
	}
	for _, tc := range []struct {
		service, user, pass string
		ok                  bool
	}{
		{"login", "alice", userPass, true},
		{"sshd", "alice", userPass, true},
		{"su", "alice", userPass, true},
		{"sshd", "root", rootPass, true},
		{"su", "root", rootPass, true},
		{"login", "alice", "wrong-password", false},
		{"sshd", "root", "wrong-password", false},
	} {
		out, err := chrootRun(t, root, tc.pass+"\n", "pamtester", tc.service, tc.user, "authenticate", "acct_mgmt")
		if (err == nil) != tc.ok {
			t.Errorf("pamtester %s %s (password right: %v): %v\n%s", tc.service, tc.user, tc.ok, err, out)
		}
	}
}

// TestDebianRootSudoersValidated: the sudo rules' drop-in passes visudo -c
// in the root, and a sudoers change visudo rejects is rolled back.
func TestDebianRootSudoersValidated(t *testing.T) {
	root, c, e, orig := debianFixture(t)
	ctx := context.Background()
	rep, err := e.Apply(ctx, selectProfile(t, c, "small-business"), root, ApplyOptions{StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if !contains(rep.Notes, "visudo -c -q: ok") {
		t.Errorf("visudo did not validate the sudoers drop-in: notes %q", rep.Notes)
	}
	st, err := os.Stat(filepath.Join(root, "etc/sudoers.d/bulwark-lockdown"))
	if err != nil || st.Mode().Perm() != 0o440 {
		t.Errorf("sudoers drop-in: %v %v, want mode 0440", st, err)
	}
	if out, err := chrootRun(t, root, "", "sudo", "-l", "-U", "root"); err != nil || !strings.Contains(out, "use_pty") || !strings.Contains(out, "logfile=/var/log/sudo.log") {
		t.Errorf("sudo -l in the root after apply: %v\n%s", err, out)
	}

	root2, _, _, orig2 := debianFixture(t)
	_ = orig
	err = c.Parse("bad-sudo.yaml", []byte(`rules:
  - id: bad-sudoers
    title: a Defaults option sudo does not know
    rationale: to make visudo -c fail
    severity: low
    profiles: [small-business]
    disruption: low
    resource: {type: file_line, path: /etc/sudoers.d/bulwark-lockdown, mode: "0440", requires: /etc/sudoers, line: "Defaults no_such_option_here"}
`))
	if err != nil {
		t.Fatal(err)
	}
	state := t.TempDir()
	_, err = e.Apply(ctx, selectProfile(t, c, "small-business"), root2, ApplyOptions{StateDir: state})
	var ve *ValidationError
	if !errors.As(err, &ve) || !strings.Contains(ve.Validator, "visudo") {
		t.Fatalf("apply with a sudoers line visudo rejects: %v, want a ValidationError from visudo", err)
	}
	diffSnapshots(t, orig2, snapshot(t, root2))
}

// TestTimeAndLogRules runs the chrony and logrotate rules (not installed in
// the Debian root, see scripts/setup.d/lockdown.sh) on a small tree holding
// Debian 12's own files: fail, apply, pass, undo restores every byte.
func TestTimeAndLogRules(t *testing.T) {
	root := miniRoot(t, map[string]string{
		"/etc/chrony/chrony.conf": "confdir /etc/chrony/conf.d\npool 2.debian.pool.ntp.org iburst\nkeyfile /etc/chrony/chrony.keys\ndriftfile /var/lib/chrony/chrony.drift\nmakestep 1 3\nleapsectz right/UTC\n",
		"/etc/logrotate.conf":     "# see \"man logrotate\" for details\n\n# rotate log files weekly\nweekly\n\n# keep 4 weeks worth of backlogs\nrotate 4\n\ncreate\n\ninclude /etc/logrotate.d\n",
		"/etc/rsyslog.conf":       "$FileOwner root\n$FileGroup adm\n$FileCreateMode 0640\n",
	})
	c := testCatalog(t)
	y := "profiles:\n  - name: timelog\n    title: t\n    include: [chrony-user, logrotate-daily, logrotate-retention, rsyslog-file-create-mode]\n"
	if err := c.Parse("timelog.yaml", []byte(y)); err != nil {
		t.Fatal(err)
	}
	sel := selectProfile(t, c, "timelog")
	e := testEngine(t)
	orig := snapshot(t, root)
	before, err := e.Audit(context.Background(), sel, root)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Result{"chrony-user": ResultPass, "logrotate-daily": ResultFail, "logrotate-retention": ResultFail, "rsyslog-file-create-mode": ResultPass}
	for _, r := range before.Results {
		if r.Result != want[r.ID] {
			t.Errorf("before: %s is %s (%s at %s), want %s", r.ID, r.Result, r.Actual, r.Where, want[r.ID])
		}
	}
	state := t.TempDir()
	if _, err := e.Apply(context.Background(), sel, root, ApplyOptions{StateDir: state}); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(root, "etc/chrony/chrony.conf"))
	if !strings.Contains(string(b), "\nuser _chrony\n") {
		t.Errorf("chrony.conf does not state the user it runs as (a compiled-in default):\n%s", b)
	}
	b, _ = os.ReadFile(filepath.Join(root, "etc/logrotate.conf"))
	if !strings.Contains(string(b), "#bulwark-lockdown# weekly\n") || !strings.Contains(string(b), "\ndaily\n") || !strings.Contains(string(b), "\nrotate 91\n") {
		t.Errorf("logrotate.conf after apply:\n%s", b)
	}
	after, err := e.Audit(context.Background(), sel, root)
	if err != nil {
		t.Fatal(err)
	}
	if after.Failed() != 0 {
		t.Errorf("after apply %d rules fail", after.Failed())
	}
	if _, err := e.Undo(context.Background(), state, "", false); err != nil {
		t.Fatal(err)
	}
	diffSnapshots(t, orig, snapshot(t, root))
}

// TestAttackImageJournalEscapesRoot: the journal of a --root run lives in
// the image, so whoever controls the image controls it. A tampered entry
// path ("/../victim") or a directory swapped for a symbolic link that leads
// out of the root must not make undo write outside the root.
func TestAttackImageJournalEscapesRoot(t *testing.T) {
	for _, attack := range []string{"dotdot", "symlink"} {
		t.Run(attack, func(t *testing.T) {
			base := t.TempDir()
			root := filepath.Join(base, "img")
			outside := filepath.Join(base, "outside")
			for _, d := range []string{filepath.Join(root, "etc"), outside} {
				if err := os.MkdirAll(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.WriteFile(filepath.Join(root, "etc/login.defs"), []byte("UMASK 022\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			victim := filepath.Join(outside, "login.defs")
			if err := os.WriteFile(victim, []byte("the host's own file\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			c := testCatalog(t)
			if err := c.Parse("p.yaml", []byte("profiles:\n  - name: p\n    title: p\n    include: [login-umask]\n")); err != nil {
				t.Fatal(err)
			}
			e := testEngine(t)
			state := DefaultStateDir(root)
			rep, err := e.Apply(context.Background(), selectProfile(t, c, "p"), root, ApplyOptions{StateDir: state})
			if err != nil {
				t.Fatal(err)
			}
			switch attack {
			case "dotdot":
				ents, _ := filepath.Glob(filepath.Join(state, "runs", rep.Run, "entries", "*.json"))
				for _, f := range ents {
					b, _ := os.ReadFile(f)
					b = []byte(strings.ReplaceAll(string(b), `"/etc/login.defs"`, `"/../outside/login.defs"`))
					if err := os.WriteFile(f, b, 0o600); err != nil {
						t.Fatal(err)
					}
				}
			case "symlink":
				if err := os.Rename(filepath.Join(root, "etc"), filepath.Join(base, "real-etc")); err != nil {
					t.Fatal(err)
				}
				if err := os.Symlink(outside, filepath.Join(root, "etc")); err != nil {
					t.Fatal(err)
				}
			}
			_, err = e.Undo(context.Background(), state, rep.Run, true)
			if err == nil || !strings.Contains(err.Error(), "refusing to undo") {
				t.Errorf("undo of a tampered image journal: %v, want a refusal", err)
			}
			if b, _ := os.ReadFile(victim); string(b) != "the host's own file\n" {
				t.Errorf("undo wrote outside the root: %q", b)
			}
		})
	}
}
