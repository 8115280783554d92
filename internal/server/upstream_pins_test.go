package server

import (
	"errors"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bulwarkhq/bulwark/internal/tuf"
)

// A server records the upstream vendors it starts with in its data
// directory, whatever configured them, for `bulwark media import`; started
// with none, it removes the record.
func TestServerRecordsUpstreamPins(t *testing.T) {
	fp := "sha256:" + strings.Repeat("ab", 32)
	data := filepath.Join(t.TempDir(), "data")
	startServer(t, Config{DataDir: data, Upstream: &Upstream{Vendors: []UpstreamVendor{{Name: "debian", RootFingerprint: fp}}}}).stop()
	file := filepath.Join(data, UpstreamPinsFile)
	pins, err := tuf.ReadPinsFile(file)
	if err != nil || !maps.Equal(pins, map[string]string{"debian": fp}) {
		t.Fatalf("recorded pins: %v %v", pins, err)
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("%s: %v %v", file, fi.Mode(), err)
	}
	startServer(t, Config{DataDir: data}).stop()
	if _, err := os.Stat(file); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a server started with no upstream left %s: %v", file, err)
	}
}
