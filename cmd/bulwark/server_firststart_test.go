package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A first start that cannot bind its port, or whose settings are wrong,
// creates nothing: no data directory, no token, no key that nobody would
// ever be shown. It says what is wrong.
func TestFirstStartBindsAndValidatesBeforeSecrets(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"port busy", []string{"--listen", busy.Addr().String()}, "address already in use (free the port or choose another with --listen)"},
		{"plain port busy", []string{"--listen", "127.0.0.1:0", "--http", busy.Addr().String()}, "choose another with --http"},
		{"listen without a port", []string{"--listen", "nonsense"}, "missing port in address (--listen takes HOST:PORT, e.g. :8443 or 127.0.0.1:8443)"},
		{"bad database", []string{"--listen", "127.0.0.1:0", "--database", "mysql://x"}, "use a postgres://"},
		{"no vendor repository", []string{"--listen", "127.0.0.1:0", "--vendor", "example=" + filepath.Join(dir, "none")}, "vendor repository example"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-"))
			keyOut := filepath.Join(dir, tc.name+".key")
			var out, errb bytes.Buffer
			err := run(context.Background(), append([]string{"server", "--data-dir", data, "--admin-token-file", filepath.Join(dir, "admin.token"), "--site-root-key-out", keyOut}, tc.args...), nil, &out, &errb)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			for _, p := range []string{data, keyOut, filepath.Join(dir, "admin.token")} {
				if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("%s was created", p)
				}
			}
			if strings.Contains(out.String(), "bwa_") {
				t.Errorf("a token was printed: %s", out.String())
			}
		})
	}
}
