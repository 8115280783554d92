package tuf

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/fetch"
)

// clock is a settable reference time shared by a repository and its clients.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type testRepo struct {
	t     testing.TB
	dir   string
	repo  *Repository
	clock *clock
}

// newTestRepo creates a repository with few bins so that tests can reason
// about which bin holds what.
func newTestRepo(t testing.TB, io InitOptions) *testRepo {
	t.Helper()
	if io.BinBits == 0 {
		io.BinBits = 4
	}
	clk := &clock{t: time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)}
	dir := filepath.Join(t.TempDir(), "repo")
	r, err := Init(dir, io, Options{Now: clk.Now})
	if err != nil {
		t.Fatalf("init: %v", err)
	}
	t.Cleanup(func() { r.Close() })
	return &testRepo{t: t, dir: dir, repo: r, clock: clk}
}

// writeUpdate writes an update YAML and its payload files into a fresh
// directory and returns the YAML's path.
func writeUpdate(t testing.TB, id string, payloads map[string]string, extra string) string {
	t.Helper()
	dir := t.TempDir()
	var pl strings.Builder
	for name, content := range payloads {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&pl, "  - file: %s\n", name)
	}
	doc := fmt.Sprintf(`id: %s
title: Test update %s
product: debian-12
classification: security
severity: important
released: 2026-11-20
reboot: never
installer:
  {type: archive, prefix: /opt/bw-test}
payloads:
%s%s`, id, id, pl.String(), extra)
	p := filepath.Join(dir, id+".yaml")
	if err := os.WriteFile(p, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func (tr *testRepo) publish(id string, payloads map[string]string) *PublishResult {
	tr.t.Helper()
	res, err := tr.repo.Publish(context.Background(), writeUpdate(tr.t, id, payloads, ""), PublishOptions{Revise: true})
	if err != nil {
		tr.t.Fatalf("publish %s: %v", id, err)
	}
	return res
}

func (tr *testRepo) read(rel string) []byte {
	tr.t.Helper()
	b, err := os.ReadFile(filepath.Join(tr.dir, rel))
	if err != nil {
		tr.t.Fatal(err)
	}
	return b
}

// server serves a repository over real HTTP on loopback. A test can replace
// the answer for any path to play an attacker: a compromised mirror, a
// man in the middle, a malicious server.
type server struct {
	*httptest.Server
	dir string
	mu  sync.Mutex
	// override maps a URL path to a handler that answers instead of the
	// repository's file.
	override map[string]http.HandlerFunc
}

func newServer(t testing.TB, dir string) *server {
	t.Helper()
	s := &server{dir: dir, override: map[string]http.HandlerFunc{}}
	files := http.FileServer(http.Dir(dir))
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		h := s.override[r.URL.Path]
		s.mu.Unlock()
		if h != nil {
			h(w, r)
			return
		}
		if strings.HasPrefix(r.URL.Path, "/"+KeysDir) {
			http.NotFound(w, r)
			return
		}
		files.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *server) set(path string, h http.HandlerFunc) {
	s.mu.Lock()
	s.override[path] = h
	s.mu.Unlock()
}

func (s *server) serveBytes(path string, b []byte) {
	s.set(path, func(w http.ResponseWriter, r *http.Request) { w.Write(b) })
}

func (s *server) reset() {
	s.mu.Lock()
	s.override = map[string]http.HandlerFunc{}
	s.mu.Unlock()
}

// newClient returns a client that trusts the repository's first root and
// keeps its cache across calls (cacheDir may be shared between clients to
// model one machine across restarts).
func newClient(t testing.TB, tr *testRepo, s *server, cacheDir string, lim fetch.Limits) *Client {
	t.Helper()
	if cacheDir == "" {
		cacheDir = t.TempDir()
	}
	c, err := NewClient(ClientConfig{
		TrustedRoot:    tr.read("metadata/1.root.json"),
		MetadataURL:    s.URL + "/metadata",
		TargetsURL:     s.URL + "/targets",
		CacheDir:       cacheDir,
		Now:            tr.clock.Now,
		MetadataLimits: lim,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}
