package sdnotify

import (
	"context"
	"net"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

func listen(t testing.TB, name string) (string, *net.UnixConn) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "notify")
	addr := sock
	if name == "abstract" {
		sock = "@bulwark-test-" + filepath.Base(t.TempDir())
		addr = "\x00" + sock[1:]
	}
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return sock, c
}

func TestNotify(t *testing.T) {
	for _, name := range []string{"path", "abstract"} {
		t.Run(name, func(t *testing.T) {
			sock, c := listen(t, name)
			if err := Notify(sock, "READY=1"); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 64)
			n, err := c.Read(buf)
			if err != nil || string(buf[:n]) != "READY=1" {
				t.Fatalf("got %q, %v", buf[:n], err)
			}
		})
	}
	if err := Notify("", "READY=1"); err != nil {
		t.Fatalf("no socket: %v", err)
	}
	if err := Notify("relative", "READY=1"); err == nil {
		t.Fatal("relative socket accepted")
	}
}

func TestWatchdogInterval(t *testing.T) {
	self := 4242
	for _, tc := range []struct {
		name, usec, pid string
		want            time.Duration
		bad             bool
	}{
		{"none", "", "", 0, false},
		{"ours", "60000000", strconv.Itoa(self), 30 * time.Second, false},
		{"no pid", "2000000", "", time.Second, false},
		{"parent's", "60000000", "1", 0, false},
		{"garbage", "sixty", "", 0, true},
		{"zero", "0", "", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := WatchdogInterval(tc.usec, tc.pid, self)
			if (err != nil) != tc.bad || got != tc.want {
				t.Fatalf("WatchdogInterval(%q, %q) = %v, %v; want %v, error %v", tc.usec, tc.pid, got, err, tc.want, tc.bad)
			}
		})
	}
}

func TestKeepAlive(t *testing.T) {
	for _, alive := range []bool{true, false} {
		t.Run(strconv.FormatBool(alive), func(t *testing.T) {
			sock, c := listen(t, "path")
			ctx, cancel := context.WithCancel(context.Background())
			asked := make(chan struct{}, 100)
			done := make(chan struct{})
			go func() {
				defer close(done)
				KeepAlive(ctx, sock, 5*time.Millisecond, func() bool {
					asked <- struct{}{}
					return alive
				})
			}()
			for range 3 {
				<-asked
			}
			cancel()
			<-done
			// Everything KeepAlive sent is queued on the socket by now.
			buf := make([]byte, 64)
			c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
			n, err := c.Read(buf)
			if alive && (err != nil || string(buf[:n]) != "WATCHDOG=1") {
				t.Fatalf("alive: got %q, %v; want WATCHDOG=1", buf[:n], err)
			}
			if !alive && err == nil {
				t.Fatalf("stuck: got %q; a stuck loop must withhold the keep-alive", buf[:n])
			}
		})
	}
}
