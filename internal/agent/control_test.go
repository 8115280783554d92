package agent

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fakeController is a hand-written Controller: the socket's job is transport
// and access control, tested here; the daemon behind it is tested on its own.
type fakeController struct{ asked []string }

func (f *fakeController) Status() Status {
	return Status{AgentID: "a-1", Group: "web", Mode: ModeDownload, States: map[State]int{StateDownloaded: 2}}
}
func (f *fakeController) Updates() []UpdateRecord {
	return []UpdateRecord{{Key: "debian/BW-1", State: StateDownloaded, Title: "One"}}
}
func (f *fakeController) InstallNow(ctx context.Context, keys []string, all bool, progress func(Progress)) (*CycleResult, error) {
	f.asked = keys
	progress(Progress{Update: "debian/BW-1", Phase: "download", Done: 50, Total: 100})
	progress(Progress{Update: "debian/BW-1", Phase: "install"})
	return &CycleResult{Pass: &PassResult{Installed: []string{"debian/BW-1"}}}, nil
}

func serveControlForTest(t *testing.T) (string, *fakeController) {
	t.Helper()
	dir, err := os.MkdirTemp("", "bulwark-ctl-") // short: socket paths are limited to 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	sock := filepath.Join(dir, "agent.sock")
	f := &fakeController{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ServeControl(ctx, sock, f) }()
	t.Cleanup(func() { cancel(); <-done })
	// The socket appears (renamed into place) once it listens; a minute
	// leaves room for a loaded machine, and an early return is the error.
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(5 * time.Millisecond) {
		if _, err := os.Stat(sock); err == nil {
			return sock, f
		}
		select {
		case err := <-done:
			done <- err // for the cleanup
			t.Fatalf("ServeControl returned before listening: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the control socket did not appear within a minute")
		}
	}
}

func TestControlSocket(t *testing.T) {
	sock, f := serveControlForTest(t)
	fi, err := os.Stat(sock)
	if err != nil || fi.Mode().Perm() != 0o660 {
		t.Fatalf("socket mode %v, %v; want 0660", fi.Mode().Perm(), err)
	}
	c := NewControlClient(sock)
	ctx := context.Background()
	st, err := c.Status(ctx)
	if err != nil || st.AgentID != "a-1" || st.States[StateDownloaded] != 2 {
		t.Fatalf("status %+v, %v", st, err)
	}
	ups, err := c.Updates(ctx)
	if err != nil || len(ups) != 1 || ups[0].Key != "debian/BW-1" {
		t.Fatalf("updates %+v, %v", ups, err)
	}
	var lines []string
	res, err := c.Install(ctx, []string{"BW-1"}, false, func(p Progress) { lines = append(lines, p.Phase) })
	if err != nil || len(res.Pass.Installed) != 1 || strings.Join(lines, ",") != "download,install" || f.asked[0] != "BW-1" {
		t.Fatalf("install: %+v %v, progress %v", res, err, lines)
	}
	if _, err := c.Install(ctx, nil, false, nil); err == nil || !strings.Contains(err.Error(), "name updates") {
		t.Fatalf("empty install request: %v", err)
	}
}

// TestMain's child mode: query the socket as whatever user this process is.
func controlChild() {
	if sock := os.Getenv("BULWARK_CONTROL_PROBE"); sock != "" {
		_, err := NewControlClient(sock).Status(context.Background())
		if err != nil {
			os.Stdout.WriteString(err.Error())
			os.Exit(3)
		}
		os.Exit(0)
	}
}

func TestControlSocketRefusesOtherUsers(t *testing.T) {
	if os.Getuid() != 0 {
		t.Fatal("this test checks access control between users and must run as root (CI and scripts/test do)")
	}
	sock, _ := serveControlForTest(t)
	os.Chmod(sock, 0o666) // let the file permissions pass so the peer check is what refuses
	// The test binary lives in a directory only root can read: copy it
	// where user nobody can run it.
	bin := filepath.Join(filepath.Dir(sock), "probe.test")
	b, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run=^$")
	cmd.Dir = filepath.Dir(sock)
	cmd.Env = append(os.Environ(), "BULWARK_CONTROL_PROBE="+sock)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "permission denied") {
		t.Fatalf("user nobody got in: err %v, output %s", err, out)
	}
}
