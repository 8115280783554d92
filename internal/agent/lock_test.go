package agent

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestLockOneAgentPerStateDir(t *testing.T) {
	dir := t.TempDir()
	release, err := Lock(dir)
	if err != nil {
		t.Fatal(err)
	}
	// flock locks belong to open files: a second open in this process
	// conflicts like a second process would.
	if _, err := Lock(dir); !errors.Is(err, ErrRunning) || !strings.Contains(err.Error(), "pid "+strconv.Itoa(os.Getpid())) {
		t.Fatalf("second Lock: %v; want ErrRunning naming pid %d", err, os.Getpid())
	}
	// Another process too (flock(1) from util-linux, as an admin's script).
	if out, err := exec.Command("flock", "-n", filepath.Join(dir, "agent.lock"), "true").CombinedOutput(); err == nil {
		t.Fatalf("another process took the lock: %s", out)
	}
	release()
	release2, err := Lock(dir)
	if err != nil {
		t.Fatalf("Lock after release: %v", err)
	}
	release2()
}
