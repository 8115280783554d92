package lockdown

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestApplyDeclinedChangesNothing(t *testing.T) {
	root := miniRoot(t, map[string]string{"/etc/login.defs": "UMASK 022\n"})
	state := filepath.Join(t.TempDir(), "state")
	asked := 0
	_, err := testEngine(t).Apply(context.Background(), selectProfile(t, testCatalog(t), "small-business"), root, ApplyOptions{
		StateDir: state,
		Confirm: func(changes []Change) (bool, error) {
			asked++
			if len(changes) == 0 {
				t.Error("asked with no changes")
			}
			return false, nil
		},
	})
	if !errors.Is(err, ErrDeclined) || asked != 1 {
		t.Fatalf("declined apply: %v (asked %d times), want ErrDeclined after one question", err, asked)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "etc/login.defs")); string(b) != "UMASK 022\n" {
		t.Errorf("login.defs changed to %q", b)
	}
	if _, err := os.Stat(state); !errors.Is(err, os.ErrNotExist) {
		t.Error("a declined apply created the journal")
	}
}

func TestJournalLock(t *testing.T) {
	state := t.TempDir()
	j, err := OpenJournal(state)
	if err != nil {
		t.Fatal(err)
	}
	unlock, err := j.Lock()
	if err != nil {
		t.Fatal(err)
	}
	root := miniRoot(t, map[string]string{"/etc/login.defs": "UMASK 022\n"})
	e := testEngine(t)
	sel := selectProfile(t, testCatalog(t), "small-business")
	if _, err := e.Apply(context.Background(), sel, root, ApplyOptions{StateDir: state}); !errors.Is(err, ErrBusy) {
		t.Errorf("apply while the journal is locked: %v, want ErrBusy", err)
	}
	if _, err := e.Undo(context.Background(), state, "", false); !errors.Is(err, ErrBusy) {
		t.Errorf("undo while the journal is locked: %v, want ErrBusy", err)
	}
	unlock()
	if _, err := e.Apply(context.Background(), sel, root, ApplyOptions{StateDir: state}); err != nil {
		t.Errorf("apply after unlock: %v", err)
	}
}

func TestJournalRefusesOtherFormat(t *testing.T) {
	state := t.TempDir()
	if err := os.WriteFile(filepath.Join(state, "FORMAT"), []byte("2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenJournal(state); err == nil {
		t.Error("journal of format 2 opened")
	}
}

func TestJournalPermissions(t *testing.T) {
	root := miniRoot(t, map[string]string{"/etc/login.defs": "UMASK 022\n"})
	state := filepath.Join(t.TempDir(), "state")
	if _, err := testEngine(t).Apply(context.Background(), selectProfile(t, testCatalog(t), "small-business"), root, ApplyOptions{StateDir: state}); err != nil {
		t.Fatal(err)
	}
	err := filepath.Walk(state, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s has mode %v: the journal holds prior file content and must be private", p, fi.Mode())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestUndoRemovesStaleTemp: a crash inside an atomic write leaves a
// temporary file next to the path; undo removes it.
func TestUndoRemovesStaleTemp(t *testing.T) {
	root := miniRoot(t, map[string]string{"/etc/login.defs": "UMASK 022\n"})
	state := t.TempDir()
	e := testEngine(t)
	if _, err := e.Apply(context.Background(), selectProfile(t, testCatalog(t), "small-business"), root, ApplyOptions{StateDir: state}); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(root, "etc/.tmp-login.defs-12345")
	if err := os.WriteFile(stale, []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Undo(context.Background(), state, "", false); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Error("stale temporary file left behind")
	}
}

// TestLiveAuditReadOnly audits this machine's own root: values come from
// /proc/sys, and nothing under /etc changes.
func TestLiveAuditReadOnly(t *testing.T) {
	if _, err := os.Stat("/proc/sys/net/ipv4/ip_forward"); err != nil {
		t.Fatalf("no /proc/sys: %v", err)
	}
	before := liveSnapshot(t)
	rep, err := testEngine(t).Audit(context.Background(), selectProfile(t, testCatalog(t), "small-business"), "/")
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range rep.Results {
		if r.ID == "net-ipv4-ip-forward" {
			found = true
			want, _ := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
			if r.Where != "/proc/sys" || r.Actual != string(want[:len(want)-1]) {
				t.Errorf("ip_forward: %q from %s, want %q from /proc/sys", r.Actual, r.Where, want)
			}
		}
	}
	if !found {
		t.Error("no ip_forward result")
	}
	diffSnapshots(t, before, liveSnapshot(t))
}

func TestSystemProberSysctl(t *testing.T) {
	p := SystemProber{Cmd: ExecCommander{}}
	if _, err := p.Sysctl(context.Background(), "net.ipv4.no_such_key"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("unknown key: %v, want not exist", err)
	}
	if _, err := p.ModuleLoaded(context.Background(), "no_such_module"); err != nil {
		t.Error(err)
	}
}

// liveSnapshot records the paths of this machine that lockdown's rules would
// change (not all of /etc, which other tests running on the machine may
// touch).
func liveSnapshot(t testing.TB) map[string]State {
	t.Helper()
	out := map[string]State{}
	for _, p := range []string{"/etc/login.defs", "/etc/fstab", "/etc/sysctl.conf", "/etc/ssh/sshd_config", "/etc/nginx/nginx.conf", sysctlDropIn, modprobeDropIn, nginxDropIn, "/etc/security/limits.d/bulwark-lockdown.conf"} {
		st, err := diskState(p, true)
		if err != nil {
			t.Fatal(err)
		}
		out[p] = st
	}
	return out
}
