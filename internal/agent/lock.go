package agent

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrRunning means another agent already runs on this state directory.
var ErrRunning = errors.New("another bulwark agent is running")

// Lock takes the run lock of the state directory (agent.lock, an flock held
// while the process lives): one agent per state directory, so a second
// `bulwark agent run` refuses to start instead of taking over the control
// socket and the journals. release gives it up; the kernel does when the
// process dies, so a crash leaves no stale lock.
func Lock(stateDir string) (release func(), err error) {
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return nil, err
	}
	p := filepath.Join(stateDir, "agent.lock")
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("agent lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		b, _ := os.ReadFile(p)
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			pid := strings.TrimSpace(string(b))
			if pid == "" {
				pid = "unknown"
			}
			return nil, fmt.Errorf("%w (pid %s holds %s): stop it first (systemctl stop bulwark-agent), or give this one its own state_dir", ErrRunning, pid, p)
		}
		return nil, fmt.Errorf("agent lock %s: %w", p, err)
	}
	f.Truncate(0)
	f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return func() { f.Close() }, nil
}
