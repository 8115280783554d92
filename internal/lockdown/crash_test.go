package lockdown

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestCrashHelper is not a test on its own: TestDebianRootCrashMidApply runs
// the test binary again with it selected, to be killed with SIGKILL in the
// middle of an apply.
func TestCrashHelper(t *testing.T) {
	root, state, marker := os.Getenv("LOCKDOWN_CRASH_ROOT"), os.Getenv("LOCKDOWN_CRASH_STATE"), os.Getenv("LOCKDOWN_CRASH_MARKER")
	if root == "" {
		return // run directly: nothing to do
	}
	c := testCatalog(t)
	e := testEngine(t)
	_, err := e.Apply(context.Background(), everyProfile(t, c), root, ApplyOptions{
		StateDir: state,
		AfterChange: func(n int, _ Change) {
			if n == 4 {
				if err := os.WriteFile(marker, []byte("4"), 0o600); err != nil {
					panic(err)
				}
				select {} // wait for SIGKILL
			}
		},
	})
	t.Fatalf("apply returned (%v); it should have been killed", err)
}

// TestDebianRootCrashMidApply kills an apply with SIGKILL after four of its
// changes, then undoes the interrupted run and finds every file as it was.
func TestDebianRootCrashMidApply(t *testing.T) {
	root := debianRoot(t)
	orig := snapshot(t, root)
	dir := t.TempDir()
	state, marker := filepath.Join(dir, "state"), filepath.Join(dir, "marker")
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), "LOCKDOWN_CRASH_ROOT="+root, "LOCKDOWN_CRASH_STATE="+state, "LOCKDOWN_CRASH_MARKER="+marker)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	deadline := time.After(2 * time.Minute)
wait:
	for {
		select {
		case err := <-done:
			t.Fatalf("apply helper exited before the crash point: %v", err)
		case <-deadline:
			cmd.Process.Kill()
			t.Fatal("apply helper never reached the crash point")
		case <-time.After(20 * time.Millisecond):
			if _, err := os.Stat(marker); err == nil {
				break wait
			}
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-done

	mid := snapshot(t, root)
	changed := 0
	for p, st := range orig {
		if !mid[p].same(st) {
			changed++
		}
	}
	for p := range mid {
		if _, ok := orig[p]; !ok {
			changed++
		}
	}
	if changed == 0 {
		t.Fatal("the killed apply had changed nothing; the crash point is wrong")
	}
	e := testEngine(t)
	runs, err := e.Runs(state)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 1 || runs[0].Status != StatusApplying {
		t.Fatalf("runs after the crash %+v, want one still applying", runs)
	}
	res, err := e.Undo(context.Background(), state, "", false)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Restored) == 0 {
		t.Error("undo restored nothing")
	}
	diffSnapshots(t, orig, snapshot(t, root))
}

// TestUndoCrashBeforeChange covers a crash between journaling a path and
// changing it: undo finds the path already in its prior state.
func TestUndoCrashBeforeChange(t *testing.T) {
	root := t.TempDir()
	p := filepath.Join(root, "etc/login.defs")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("UMASK 022\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tree, err := NewTree(root)
	if err != nil {
		t.Fatal(err)
	}
	if err := tree.EditFile("/etc/login.defs", []byte("UMASK 027\n")); err != nil {
		t.Fatal(err)
	}
	changes, err := tree.Changes()
	if err != nil || len(changes) != 1 {
		t.Fatalf("changes %v, %v", changes, err)
	}
	j, err := OpenJournal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	w, err := j.Begin(tree.Root(), "test", nil, fixedNow)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Record(changes[0].Path, changes[0].Before, changes[0].After, p); err != nil {
		t.Fatal(err)
	}
	// Crash here: the entry is written, the file is not.
	res, err := j.undo(w.ID(), false, fixedNow)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Unchanged) != 1 || len(res.Restored) != 0 {
		t.Errorf("undo %+v, want the one path reported unchanged", res)
	}
	if b, _ := os.ReadFile(p); string(b) != "UMASK 022\n" {
		t.Errorf("login.defs is %q", b)
	}
}
