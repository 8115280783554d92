package server

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/pki"
)

// resumingClient is a client like the agent's: it keeps TLS sessions, and
// names the server the way an agent behind a load balancer does (one host
// name whichever replica answers). Each request opens a new connection.
func resumingClient(t testing.TB, pin string, cache tls.ClientSessionCache) *http.Client {
	t.Helper()
	tc, err := pki.PinnedClientConfig(pin)
	if err != nil {
		t.Fatal(err)
	}
	tc.ServerName = "localhost"
	tc.ClientSessionCache = cache
	return &http.Client{Transport: &http.Transport{TLSClientConfig: tc, DisableKeepAlives: true}, Timeout: 30 * time.Second}
}

// resumed fetches /healthz from base and says whether the TLS session was
// resumed.
func resumed(t testing.TB, c *http.Client, base string) bool {
	t.Helper()
	resp, err := c.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body) // reads the session ticket that follows the handshake
	resp.Body.Close()
	return resp.TLS.DidResume
}

// TestTicketsResumeOnOtherReplicaAndAfterRestart: a session made with one
// replica resumes on the other and on the first after it restarted. With
// each process's own random ticket keys (Go's default) both were full
// handshakes.
func TestTicketsResumeOnOtherReplicaAndAfterRestart(t *testing.T) {
	a, b, _ := startReplicas(t)
	c := resumingClient(t, a.CAFingerprint(), tls.NewLRUClientSessionCache(4))
	if resumed(t, c, a.url) {
		t.Fatal("first connection resumed a session")
	}
	if !resumed(t, c, b.url) {
		t.Fatal("a session made with replica A did not resume on replica B")
	}
	cfg := a.cfg
	a.stop()
	a = startServer(t, cfg)
	if !resumed(t, c, a.url) {
		t.Fatal("a session did not resume after the replica restarted")
	}
	fi, err := os.Stat(filepath.Join(cfg.DataDir, tlsDir, ticketFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("ticket key file: %v, mode %v, want 0600", err, fi.Mode().Perm())
	}
}

// TestAttackStolenTicketKeysOpenOldSessions: someone who copies the ticket
// key file gets the keys of the last ticketKeep only; a ticket issued
// before that (its key deleted at rotation) does not resume on a server
// holding every stolen key. The same attacker's server resumes a ticket
// issued with a key in the window, so the test can tell the two apart. The
// real server too stops resuming a ticket once its key left the window,
// and still resumes one a rotation old.
func TestAttackStolenTicketKeysOpenOldSessions(t *testing.T) {
	var skew atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	ts := startServer(t, Config{Now: now})
	pin := ts.CAFingerprint()
	path := filepath.Join(ts.cfg.DataDir, tlsDir, ticketFile)
	// Day 0: three clients take a session each (a resumption or a full
	// handshake replaces a client's ticket, so each is used once more only).
	day0 := []tls.ClientSessionCache{tls.NewLRUClientSessionCache(4), tls.NewLRUClientSessionCache(4), tls.NewLRUClientSessionCache(4)}
	for _, c := range day0 {
		resumed(t, resumingClient(t, pin, c), ts.url)
	}

	skew.Store(int64(24 * time.Hour))
	if err := ts.tickets.refresh(); err != nil {
		t.Fatal(err)
	}
	if keys, _ := readTicketKeys(path); len(keys) != 2 {
		t.Fatalf("a day later: %d ticket keys, want a new one beside the old", len(keys))
	}
	if !resumed(t, resumingClient(t, pin, day0[0]), ts.url) {
		t.Fatal("a session a day old did not resume after the key rotated")
	}
	day1 := tls.NewLRUClientSessionCache(4)
	resumed(t, resumingClient(t, pin, day1), ts.url)

	// A week and an hour after day 0: the day-0 key has left the window,
	// the day-1 key has not.
	skew.Store(int64(ticketKeep + time.Hour))
	if err := ts.tickets.refresh(); err != nil {
		t.Fatal(err)
	}
	if resumed(t, resumingClient(t, pin, day0[1]), ts.url) {
		t.Fatal("the server resumed a ticket whose key is older than the window")
	}
	// The theft: every key the file holds now.
	stolen, err := readTicketKeys(path)
	if err != nil {
		t.Fatal(err)
	}
	attacker := attackerServer(t, ts.cert.Load(), stolen)
	if resumed(t, resumingClient(t, pin, day0[2]), attacker) {
		t.Fatal("the stolen key file opened a session ticket older than the key window")
	}
	if !resumed(t, resumingClient(t, pin, day1), attacker) {
		t.Fatal("control: the stolen keys did not open a ticket inside the window")
	}
}

// attackerServer is a TLS server with the site's certificate and the given
// ticket keys, answering /healthz.
func attackerServer(t *testing.T, cert *tls.Certificate, keys []ticketKey) string {
	t.Helper()
	raw := make([][32]byte, len(keys))
	for i, k := range keys {
		copy(raw[i][:], k.Key)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{*cert}, MinVersion: tls.VersionTLS12}
	tc.SetSessionTicketKeys(raw)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", tc)
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})}
	go hs.Serve(ln)
	t.Cleanup(func() {
		if err := hs.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			t.Error(err)
		}
	})
	return "https://" + ln.Addr().String()
}

// TestTicketKeysRotateOnceAcrossReplicas: replicas reading one key file
// under its lock make one new key per rotation however many look at once,
// each picks up the key another made, and a damaged file is refused by name
// rather than replaced behind the other replicas' backs.
func TestTicketKeysRotateOnceAcrossReplicas(t *testing.T) {
	dir := t.TempDir()
	var skew atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	base := func() *tls.Config { return &tls.Config{MinVersion: tls.VersionTLS12} }
	replicas := make([]*tickets, 8)
	for i := range replicas {
		replicas[i] = &tickets{dir: dir, now: now, base: base}
	}
	if err := replicas[0].refresh(); err != nil {
		t.Fatal(err)
	}
	skew.Store(int64(ticketRotate + time.Minute))
	var wg sync.WaitGroup
	for _, r := range replicas {
		wg.Go(func() {
			if err := r.refresh(); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	keys, err := readTicketKeys(filepath.Join(dir, ticketFile))
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 {
		t.Fatalf("%d keys after one rotation seen by 8 replicas at once, want 2", len(keys))
	}
	for i, r := range replicas {
		if r.loaded != replicas[0].loaded || r.cfg.Load() == nil {
			t.Fatalf("replica %d holds keys %q, replica 0 %q", i, r.loaded, replicas[0].loaded)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, ticketFile), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	err = replicas[1].refresh()
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, ticketFile)) || !strings.Contains(err.Error(), "remove it") {
		t.Fatalf("damaged key file: %v, want it named with what to do", err)
	}
}
