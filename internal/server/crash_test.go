package server

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/tuf"
)

// TestMain lets the test binary play a server process that syncs once, so
// that TestSyncCrash can kill -9 it.
func TestMain(m *testing.M) {
	if os.Getenv("BULWARK_SYNC_HELPER") != "" {
		os.Exit(syncHelper())
	}
	os.Exit(m.Run())
}

func syncHelper() int {
	cfg := Config{DataDir: os.Getenv("BULWARK_DATA"), Listen: "127.0.0.1:0", Upstream: &Upstream{
		URL: os.Getenv("BULWARK_UP"), CAFingerprint: os.Getenv("BULWARK_UP_CA"), Interval: time.Hour,
		Vendors: []UpstreamVendor{{Name: "example", RootFingerprint: os.Getenv("BULWARK_ROOT")}}}}
	s, _, err := Open(context.Background(), cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer s.Close()
	if _, err := s.SyncAll(context.Background(), "", "manual"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// slowProxy forwards TCP connections to addr at about rate bytes per second
// in each direction, so a sync takes long enough to be killed in the middle.
func slowProxy(t testing.TB, addr string, rate int) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	pipe := func(dst, src net.Conn) {
		buf := make([]byte, rate/20)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				if _, err := dst.Write(buf[:n]); err != nil {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			if err != nil {
				break
			}
		}
		dst.Close()
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", addr)
			if err != nil {
				c.Close()
				continue
			}
			go pipe(u, c)
			go pipe(c, u)
		}
	}()
	return ln.Addr().String()
}

// TestSyncCrash kills a syncing server process with SIGKILL at several
// points. After every kill, what the mirror would serve verifies completely
// from the vendor root (nothing partial is ever visible); a restart then
// finishes the sync.
func TestSyncCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns server processes")
	}
	v := newVendorRepo(t, "example")
	for i := 1; i <= 6; i++ {
		v.publish(t, fmt.Sprintf("BW-%d", i), "critical", map[string]string{fmt.Sprintf("p%d.deb", i): strings.Repeat(fmt.Sprint(i), 300<<10)})
	}
	up := startServer(t, Config{Vendors: []HostedVendor{{Name: "example", Dir: v.dir}}})
	proxy := slowProxy(t, strings.TrimPrefix(up.url, "https://"), 1<<20)
	data := filepath.Join(t.TempDir(), "site")
	mirror := filepath.Join(data, mirrorsDir, "example")
	run := func(killAfter time.Duration) (killed bool, out string) {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "BULWARK_SYNC_HELPER=1", "BULWARK_DATA="+data, "BULWARK_UP=https://"+proxy,
			"BULWARK_UP_CA="+up.CAFingerprint(), "BULWARK_ROOT="+tuf.RootFingerprint(v.root(t)))
		var buf strings.Builder
		cmd.Stdout, cmd.Stderr = &buf, &buf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		if killAfter > 0 {
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("sync helper: %v\n%s", err, buf.String())
				}
				return false, buf.String()
			case <-time.After(killAfter):
				cmd.Process.Kill()
				<-done
				return true, buf.String()
			}
		}
		if err := <-done; err != nil {
			t.Fatalf("sync helper: %v\n%s", err, buf.String())
		}
		return false, buf.String()
	}
	checkServed := func(when string) int {
		t.Helper()
		if _, err := os.Stat(filepath.Join(mirror, "metadata", "timestamp.json")); os.IsNotExist(err) {
			return 0 // nothing served yet
		}
		rep, err := tuf.Verify(context.Background(), mirror, v.root(t), time.Now())
		if err != nil || !rep.OK() {
			t.Fatalf("%s: the mirror serves something that does not verify: %v %+v", when, err, rep)
		}
		return rep.Updates
	}
	kills := 0
	for _, d := range []time.Duration{300 * time.Millisecond, 700 * time.Millisecond, 1200 * time.Millisecond, 1800 * time.Millisecond} {
		killed, _ := run(d)
		if killed {
			kills++
		}
		n := checkServed(fmt.Sprintf("after kill -9 at %v", d))
		t.Logf("killed at %v: %v; mirror serves %d verified updates", d, killed, n)
	}
	if kills == 0 {
		t.Fatal("every sync finished before its kill: the test did not interrupt anything")
	}
	run(0)
	if n := checkServed("after the final sync"); n != 6 {
		t.Fatalf("final mirror has %d updates, want 6", n)
	}
	if got := payloadFiles(t, &testServer{Server: &Server{cfg: Config{DataDir: data}}}); len(got) != 6 {
		t.Fatalf("final mirror holds payloads %v, want 6", got)
	}

	// An incremental sync killed in the middle keeps serving the previous
	// complete state; the next one brings the new updates.
	for i := 7; i <= 9; i++ {
		v.publish(t, fmt.Sprintf("BW-%d", i), "critical", map[string]string{fmt.Sprintf("p%d.deb", i): strings.Repeat(fmt.Sprint(i), 300<<10)})
	}
	// The upstream serves timestamp.json from memory for up to metaTTL
	// after a publish made outside the server (docs/SERVER.md).
	time.Sleep(metaTTL + 100*time.Millisecond)
	for _, d := range []time.Duration{300 * time.Millisecond, 900 * time.Millisecond} {
		killed, _ := run(d)
		n := checkServed(fmt.Sprintf("after kill -9 of an incremental sync at %v", d))
		t.Logf("incremental sync killed at %v: %v; mirror serves %d verified updates", d, killed, n)
		if killed && n != 6 && n != 9 {
			t.Fatalf("mirror serves %d updates: neither the old state (6) nor the new (9)", n)
		}
	}
	run(0)
	if n := checkServed("after the final incremental sync"); n != 9 {
		t.Fatalf("final mirror has %d updates, want 9", n)
	}
}
