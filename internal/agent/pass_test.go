package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/catalog"
)

// recorder is a hand-written Handler that appends each call to a file (so
// calls are counted across a crash and a restart) and fails or crashes on
// request. The real handlers (internal/install) run dpkg; the agent's
// end-to-end test uses them.
type recorder struct {
	log     string
	failOn  string
	crashOn string // SIGKILL the process inside this update's install
}

func (r recorder) Install(ctx context.Context, u *catalog.Update, _ map[string]string) (bool, error) {
	f, err := os.OpenFile(r.log, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return false, err
	}
	fmt.Fprintf(f, "install %s\n", u.ID)
	f.Sync()
	f.Close()
	if u.ID == r.crashOn {
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		time.Sleep(time.Minute)
	}
	if u.ID == r.failOn {
		return false, errors.New("dpkg: dependency problems - leaving unconfigured")
	}
	return false, nil
}

func (r recorder) Uninstall(ctx context.Context, u *catalog.Update, _ map[string]string) (bool, error) {
	return false, nil
}

func calls(t testing.TB, p string) []string {
	b, err := os.ReadFile(p)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return strings.Fields(strings.ReplaceAll(string(b), "install ", ""))
}

type passFixture struct {
	dir, log, bootID, rebootLog string
}

func newPassFixture(t testing.TB) passFixture {
	d := t.TempDir()
	f := passFixture{dir: filepath.Join(d, "state"), log: filepath.Join(d, "calls"), bootID: filepath.Join(d, "boot_id"), rebootLog: filepath.Join(d, "reboots")}
	os.WriteFile(f.bootID, []byte("boot-1\n"), 0o644)
	return f
}

func (f passFixture) open(t testing.TB, h recorder) *Agent {
	t.Helper()
	h.log = f.log
	a, err := Open(Config{
		StateDir: f.dir,
		Handlers: func(string) (Handler, error) { return h, nil },
		Reboot:   Reboot{Command: []string{"sh", "-c", "echo reboot >> " + f.rebootLog}, BootIDPath: f.bootID},
	})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func steps(ids ...string) []Step {
	var out []Step
	for _, id := range ids {
		c := cand(id, catalog.SeverityCritical, nil)
		out = append(out, Step{Candidate: c, Action: ActionInstall})
	}
	return out
}

func TestPassRebootsOnceForManyUpdates(t *testing.T) {
	f := newPassFixture(t)
	a := f.open(t, recorder{})
	st := steps("BW-1", "BW-2", "BW-3")
	for i := range st {
		st[i].Update.Reboot = catalog.RebootRequired
	}
	res, err := a.runPass(context.Background(), st, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(calls(t, f.rebootLog)); got != 1 || !res.Rebooted {
		t.Fatalf("reboot command ran %d times (rebooted=%v), want exactly 1", got, res.Rebooted)
	}
	for _, r := range a.Updates() {
		if r.State != StatePendingReboot {
			t.Fatalf("%s: %s, want %s", r.Key, r.State, StatePendingReboot)
		}
	}
	a.Close()
	// Same boot: still pending. New boot id: installed.
	a = f.open(t, recorder{})
	if a.Updates()[0].State != StatePendingReboot {
		t.Fatal("pending reboot cleared without a reboot")
	}
	a.Close()
	os.WriteFile(f.bootID, []byte("boot-2\n"), 0o644)
	a = f.open(t, recorder{})
	defer a.Close()
	for _, r := range a.Updates() {
		if r.State != StateInstalled {
			t.Fatalf("after reboot %s: %s, want installed", r.Key, r.State)
		}
	}
}

func TestPassFailureStopsDependents(t *testing.T) {
	f := newPassFixture(t)
	a := f.open(t, recorder{failOn: "BW-1"})
	defer a.Close()
	st := steps("BW-1", "BW-2", "BW-3")
	st[1].Update.Requires = []string{"BW-1"}
	res, err := a.runPass(context.Background(), st, nil)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(calls(t, f.log), " ") != "BW-1 BW-3" {
		t.Fatalf("handler calls = %v; BW-2 requires the failed BW-1 and must not be attempted", calls(t, f.log))
	}
	if len(res.Failed) != 2 || len(res.Installed) != 1 || len(calls(t, f.rebootLog)) != 0 {
		t.Fatalf("result %+v, reboots %d", res, len(calls(t, f.rebootLog)))
	}
	recs := map[string]UpdateRecord{}
	for _, r := range a.Updates() {
		recs[r.Key] = r
	}
	if r := recs["debian/BW-1"]; r.State != StateFailed || !strings.Contains(r.Reason, "dependency problems") {
		t.Fatalf("BW-1: %+v", r)
	}
	if r := recs["debian/BW-2"]; r.State != StateFailed || !strings.Contains(r.Reason, "BW-1 failed") {
		t.Fatalf("BW-2: %+v", r)
	}
}

// TestMain doubles as a crashing agent for TestPassSurvivesKill.
func TestMain(m *testing.M) {
	controlChild()
	downloadKillChild()
	if dir := os.Getenv("BULWARK_AGENT_CRASH_DIR"); dir != "" {
		f := passFixture{dir: filepath.Join(dir, "state"), log: filepath.Join(dir, "calls"), bootID: filepath.Join(dir, "boot_id"), rebootLog: filepath.Join(dir, "reboots")}
		a := f.open(&testing.T{}, recorder{crashOn: os.Getenv("BULWARK_AGENT_CRASH_ON")})
		a.runPass(context.Background(), steps("BW-1", "BW-2", "BW-3"), nil)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestPassSurvivesKill(t *testing.T) {
	for _, victim := range []string{"BW-1", "BW-2", "BW-3"} {
		t.Run("killed installing "+victim, func(t *testing.T) {
			f := newPassFixture(t)
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), "BULWARK_AGENT_CRASH_DIR="+filepath.Dir(f.dir), "BULWARK_AGENT_CRASH_ON="+victim)
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("agent not killed: %v %s", err, out)
			}
			// Restart: plan again from what the agent knows, as a real
			// cycle does, and run the pass.
			a := f.open(t, recorder{})
			defer a.Close()
			installed := a.store.installed()
			var todo []Step
			for _, s := range steps("BW-1", "BW-2", "BW-3") {
				if !installed[s.Key()] {
					todo = append(todo, s)
				}
			}
			if _, err := a.runPass(context.Background(), todo, nil); err != nil {
				t.Fatal(err)
			}
			count := map[string]int{}
			for _, c := range calls(t, f.log) {
				count[c]++
			}
			for _, id := range []string{"BW-1", "BW-2", "BW-3"} {
				want := 1
				if id == victim {
					want = 2 // begun, killed, run again
				}
				if count[id] != want {
					t.Fatalf("%s installed %d times, want %d (calls %v)", id, count[id], want, calls(t, f.log))
				}
			}
			for _, r := range a.Updates() {
				if r.State != StateInstalled {
					t.Fatalf("%s: %s after recovery", r.Key, r.State)
				}
			}
		})
	}
}

func TestEventsAreQueuedUntilDelivered(t *testing.T) {
	f := newPassFixture(t)
	a := f.open(t, recorder{})
	if _, err := a.runPass(context.Background(), steps("BW-1", "BW-2"), nil); err != nil {
		t.Fatal(err)
	}
	ev := a.store.pending(100)
	if len(ev) != 2 || ev[0].Seq != 1 || ev[1].State != StateInstalled {
		t.Fatalf("events = %+v", ev)
	}
	a.Close()
	// A restart keeps undelivered events (a machine offline for a week
	// reports its whole history when it comes back).
	a = f.open(t, recorder{})
	if len(a.store.pending(100)) != 2 {
		t.Fatal("undelivered events lost across a restart")
	}
	if err := a.store.delivered(1); err != nil {
		t.Fatal(err)
	}
	a.Close()
	a = f.open(t, recorder{})
	defer a.Close()
	if ev := a.store.pending(100); len(ev) != 1 || ev[0].Seq != 2 {
		t.Fatalf("after delivering seq 1: %+v", ev)
	}
	if err := a.store.delivered(2); err != nil {
		t.Fatal(err)
	}
	if err := a.store.set("debian/BW-3", StateNeeded, "", nil); err != nil {
		t.Fatal(err)
	}
	if ev := a.store.pending(100); len(ev) != 1 || ev[0].Seq != 3 {
		t.Fatalf("sequence restarted after compaction: %+v", ev)
	}
}

// `reboot_command: []` in the configuration means never reboot: a pass that
// needs a reboot installs, leaves the updates pending and runs nothing.
func TestRebootCommandEmptyNeverReboots(t *testing.T) {
	f := newPassFixture(t)
	conf := filepath.Join(t.TempDir(), "agent.yaml")
	os.WriteFile(conf, []byte("# the app team reboots\nreboot_command: []\n"), 0o644)
	s, err := LoadConfig(conf)
	if err != nil {
		t.Fatal(err)
	}
	a, err := Open(Config{
		StateDir: f.dir,
		Handlers: func(string) (Handler, error) { return recorder{log: f.log}, nil },
		Reboot:   Reboot{Command: s.RebootCommand, BootIDPath: f.bootID},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	st := steps("BW-1")
	st[0].Update.Reboot = catalog.RebootRequired
	res, err := a.runPass(context.Background(), st, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(f.rebootLog); res.Rebooted || err == nil {
		t.Fatalf("reboot_command: [] rebooted (rebooted=%v)", res.Rebooted)
	}
	if r := a.Updates()[0]; r.State != StatePendingReboot {
		t.Fatalf("%s: %s, want %s", r.Key, r.State, StatePendingReboot)
	}
	// Without the key, the default reboots.
	os.WriteFile(conf, []byte("mode: auto\n"), 0o644)
	if s, err := LoadConfig(conf); err != nil || strings.Join(s.RebootCommand, " ") != "systemctl reboot" {
		t.Fatalf("default reboot command: %v %v", s.RebootCommand, err)
	}
}
