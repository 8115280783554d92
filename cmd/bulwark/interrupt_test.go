package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// bulwarkProcess starts this test binary as the bulwark command, a real
// process that a signal can interrupt.
func bulwarkProcess(t *testing.T, args ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "BULWARK_TEST_MAIN=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, &out
}

// interruptAfter sends SIGINT (Ctrl-C) after d and returns the exit status;
// 130 also for a process the signal killed before main could catch it
// (it had done nothing yet).
func interruptAfter(t *testing.T, cmd *exec.Cmd, d time.Duration) int {
	t.Helper()
	time.Sleep(d)
	cmd.Process.Signal(syscall.SIGINT)
	err := cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGINT {
			return 130
		}
		return ee.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0
}

func verifyRepo(t *testing.T, dir string) {
	t.Helper()
	var out bytes.Buffer
	if err := run(context.Background(), []string{"repo", "verify", dir}, nil, &out, &out); err != nil || !strings.HasPrefix(out.String(), "OK ") {
		t.Fatalf("repo verify %s: %v\n%s", dir, err, out.String())
	}
}

// Ctrl-C stops `repo init` at any point and leaves no half-made repository:
// the directory is gone (or the init had finished and verifies), and an
// init there afterwards works.
func TestInterruptRepoInit(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	interrupted := 0
	for _, d := range []time.Duration{5 * time.Millisecond, 50 * time.Millisecond, 150 * time.Millisecond, 400 * time.Millisecond, 900 * time.Millisecond, 2 * time.Second} {
		dir := filepath.Join(t.TempDir(), "vendor")
		cmd, out := bulwarkProcess(t, "repo", "init", dir, "--bin-bits", "13")
		switch code := interruptAfter(t, cmd, d); code {
		case 0:
			verifyRepo(t, dir)
		case 130:
			interrupted++
			t.Logf("interrupted after %s: %s", d, strings.TrimSpace(out.String()))
			if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
				entries, _ := os.ReadDir(dir)
				t.Fatalf("after %s: %s left behind with %d entries", d, dir, len(entries))
			}
			if err := run(context.Background(), []string{"repo", "init", dir, "--bin-bits", "4"}, nil, io.Discard, io.Discard); err != nil {
				t.Fatalf("after %s: init again: %v", d, err)
			}
			verifyRepo(t, dir)
		default:
			t.Fatalf("after %s: exit status %d: %s", d, code, out.String())
		}
	}
	if interrupted == 0 {
		t.Fatal("no init was interrupted: the test showed nothing")
	}
}

// Ctrl-C stops `repo publish` of many updates at several points (reading
// updates, copying payloads, signing bins); every time the repository
// verifies as it was or with the whole publish, and the same publish run
// again completes.
func TestInterruptRepoPublish(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	dir := t.TempDir()
	updates := writeArchiveUpdates(t, dir, 150)
	interrupted := 0
	for _, d := range []time.Duration{5 * time.Millisecond, 100 * time.Millisecond, 300 * time.Millisecond, 800 * time.Millisecond, 2 * time.Second} {
		repo := filepath.Join(t.TempDir(), "vendor")
		if err := run(context.Background(), []string{"repo", "init", repo, "--bin-bits", "8"}, nil, io.Discard, io.Discard); err != nil {
			t.Fatal(err)
		}
		// One update already there: an interrupted publish must keep it.
		if err := run(context.Background(), []string{"repo", "publish", repo, updates[0]}, nil, io.Discard, io.Discard); err != nil {
			t.Fatal(err)
		}
		cmd, out := bulwarkProcess(t, append([]string{"repo", "publish", repo}, updates...)...)
		code := interruptAfter(t, cmd, d)
		if code != 0 && code != 130 {
			t.Fatalf("after %s: exit status %d: %s", d, code, out.String())
		}
		if code == 130 {
			interrupted++
		}
		t.Logf("interrupted after %s: exit %d, %.60q", d, code, lastLine(out.String()))
		verifyRepo(t, repo)
		var list bytes.Buffer
		if err := run(context.Background(), []string{"repo", "list", repo}, nil, &list, io.Discard); err != nil {
			t.Fatal(err)
		}
		want := "1 update(s)"
		if code == 0 {
			want = "150 update(s)"
		}
		if !strings.Contains(list.String(), want) {
			t.Fatalf("after %s (exit %d): want %s, got %s", d, code, want, list.String())
		}
		if err := run(context.Background(), append([]string{"repo", "publish", repo}, updates...), nil, io.Discard, io.Discard); err != nil {
			t.Fatalf("after %s: publish again: %v", d, err)
		}
		verifyRepo(t, repo)
	}
	if interrupted == 0 {
		t.Fatal("no publish was interrupted: the test showed nothing")
	}
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	return s[strings.LastIndex(s, "\n")+1:]
}
