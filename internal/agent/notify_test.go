package agent

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestNotifierReachesEachSessionBus(t *testing.T) {
	dir := t.TempDir()
	record := filepath.Join(dir, "calls")
	// A stand-in notify-send that records its arguments and environment:
	// this machine has no desktop session to show a real notification in.
	prog := filepath.Join(dir, "notify-send")
	os.WriteFile(prog, []byte("#!/bin/sh\necho \"$DBUS_SESSION_BUS_ADDRESS|$*\" >> "+record+"\n"), 0o755)
	run := filepath.Join(dir, "run-user")
	uid := os.Getuid()
	userDir := filepath.Join(run, itoa(uid))
	os.MkdirAll(userDir, 0o700)
	l, err := net.Listen("unix", filepath.Join(userDir, "bus"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	os.MkdirAll(filepath.Join(run, "4242"), 0o700) // a user without a bus
	n := Notifier{RunUserDir: run, NotifySend: prog}
	n.Notify([]UpdateRecord{{Title: "OpenSSL security update", Severity: "critical"}})
	b, err := os.ReadFile(record)
	if err != nil {
		t.Fatal(err)
	}
	got := string(b)
	if strings.Count(got, "--app-name=Bulwark") != 1 || !strings.Contains(got, "unix:path="+filepath.Join(userDir, "bus")) || !strings.Contains(got, "OpenSSL security update (critical)") {
		t.Fatalf("notify-send calls: %q", got)
	}
}
