package server

import (
	"net"
	"path/filepath"
	"testing"
)

func TestSdNotify(t *testing.T) {
	for _, name := range []string{"path", "abstract"} {
		t.Run(name, func(t *testing.T) {
			sock := filepath.Join(t.TempDir(), "notify")
			listen := sock
			if name == "abstract" {
				sock = "@bulwark-test-" + filepath.Base(t.TempDir())
				listen = "\x00" + sock[1:]
			}
			c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: listen, Net: "unixgram"})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if err := SdNotify(sock, "READY=1"); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 64)
			n, err := c.Read(buf)
			if err != nil || string(buf[:n]) != "READY=1" {
				t.Fatalf("got %q, %v", buf[:n], err)
			}
		})
	}
	if err := SdNotify("", "READY=1"); err != nil {
		t.Fatalf("no socket: %v", err)
	}
	if err := SdNotify("relative", "READY=1"); err == nil {
		t.Fatal("relative socket accepted")
	}
}
