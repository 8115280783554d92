package s3test

import (
	"strings"
	"testing"
)

// The port freePort found free can be taken by another process before
// versitygw binds it: under `go test ./...` that is often another package's
// versitygw. Start must then not hand the test that other server (whose
// keys differ) but start its own on another port.
func TestStartRetriesWhenAnotherServerTookItsPort(t *testing.T) {
	other := Start(t)
	taken := strings.TrimPrefix(other.Endpoint, "http://")
	defer func(f func() (string, error)) { freePort = f }(freePort)
	real, calls := freePort, 0
	freePort = func() (string, error) {
		calls++
		if calls == 1 {
			return taken, nil // as if another process bound it first
		}
		return real()
	}
	s := Start(t)
	if s.Endpoint == other.Endpoint {
		t.Fatalf("Start returned the other server at %s", s.Endpoint)
	}
	if calls < 2 {
		t.Fatalf("Start asked for a port %d time(s); it should have retried", calls)
	}
	s.Open(t, "mine", "p") // its keys work on it
}
