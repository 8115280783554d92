package agent

import (
	"context"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/bulwarkhq/bulwark/internal/approval"
	"github.com/bulwarkhq/bulwark/internal/tuf"
)

// world is a vendor repository and a site repository, each served over real
// HTTP on loopback by a server that a test can turn into an attacker.
type world struct {
	t                  testing.TB
	now                time.Time
	vendorDir, siteDir string
	vendor             *tuf.Repository
	site               *tuf.SiteRepository
	vs, ss             *evilServer
}

type evilServer struct {
	*httptest.Server
	mu       sync.Mutex
	override map[string][]byte
	handlers map[string]http.HandlerFunc
}

func newEvilServer(t testing.TB, dir string) *evilServer {
	s := &evilServer{override: map[string][]byte{}, handlers: map[string]http.HandlerFunc{}}
	files := http.FileServer(http.Dir(dir))
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		b, ok := s.override[r.URL.Path]
		h := s.handlers[r.URL.Path]
		s.mu.Unlock()
		if h != nil {
			h(w, r)
			return
		}
		if ok {
			w.Write(b)
			return
		}
		files.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *evilServer) serve(path string, b []byte) {
	s.mu.Lock()
	s.override[path] = b
	s.mu.Unlock()
}

func (s *evilServer) handle(path string, h http.HandlerFunc) {
	s.mu.Lock()
	s.handlers[path] = h
	s.mu.Unlock()
}

func (s *evilServer) reset() {
	s.mu.Lock()
	s.override = map[string][]byte{}
	s.mu.Unlock()
}

func newWorld(t testing.TB) *world {
	t.Helper()
	w := &world{t: t, now: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)}
	d := t.TempDir()
	w.vendorDir, w.siteDir = filepath.Join(d, "vendor"), filepath.Join(d, "site")
	var err error
	if w.vendor, err = tuf.Init(w.vendorDir, tuf.InitOptions{Name: "debian", BinBits: 4}, tuf.Options{Now: w.clock}); err != nil {
		t.Fatal(err)
	}
	// The site root signs the vendor list: debian, with its first root.
	vendorRoot, err := os.ReadFile(filepath.Join(w.vendorDir, "metadata", "1.root.json"))
	if err != nil {
		t.Fatal(err)
	}
	if w.site, err = tuf.InitSite(w.siteDir, tuf.SiteInitOptions{Name: "hq", Vendors: map[string]string{"debian": tuf.RootFingerprint(vendorRoot)}}, tuf.Options{Now: w.clock}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.vendor.Close(); w.site.Close() })
	w.vs, w.ss = newEvilServer(t, w.vendorDir), newEvilServer(t, w.siteDir)
	return w
}

func (w *world) clock() time.Time { return w.now }

// publish signs an update whose payload is a file with the given content.
func (w *world) publish(id, extra string, payloads map[string]string) {
	w.t.Helper()
	dir := w.t.TempDir()
	var pl strings.Builder
	for name, content := range payloads {
		os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644)
		fmt.Fprintf(&pl, "  - file: %s\n", name)
	}
	y := filepath.Join(dir, id+".yaml")
	os.WriteFile(y, []byte(fmt.Sprintf(`id: %s
title: Update %s
product: debian-12
classification: security
severity: critical
released: 2026-11-20
reboot: never
installer: {type: archive, prefix: /opt/bw-test}
payloads:
%s%s`, id, id, pl.String(), extra)), 0o644)
	if _, err := w.vendor.Publish(context.Background(), y, tuf.PublishOptions{Revise: true}); err != nil {
		w.t.Fatal(err)
	}
}

// approve signs the group's approvals for ids, with targets copied from the
// vendor's metadata as the update server does.
func (w *world) approve(group string, ids ...string) *approval.Document {
	w.t.Helper()
	doc := &approval.Document{Group: group}
	for _, id := range ids {
		e, err := w.vendor.Show(context.Background(), id)
		if err != nil {
			w.t.Fatal(err)
		}
		a := approval.Approval{Vendor: "debian", ID: id, Action: approval.ActionInstall, Rollout: 100}
		for _, tf := range append(append([]*metadata.TargetFiles(nil), e.Target), e.Payloads...) {
			a.Targets = append(a.Targets, approval.Target{Path: tf.Path, Length: tf.Length, SHA256: hex.EncodeToString(tf.Hashes["sha256"])})
		}
		doc.Updates = append(doc.Updates, a)
	}
	if err := w.site.SetApprovals(context.Background(), doc); err != nil {
		w.t.Fatal(err)
	}
	return doc
}

// sources are the agent's clients, with caches that persist across cycles
// in cache.
func (w *world) sources(cache string) Sources {
	w.t.Helper()
	mk := func(dir, url, name string) *tuf.Client {
		root, err := os.ReadFile(filepath.Join(dir, "metadata", "1.root.json"))
		if err != nil {
			w.t.Fatal(err)
		}
		c, err := tuf.NewClient(tuf.ClientConfig{TrustedRoot: root, MetadataURL: url + "/metadata", TargetsURL: url + "/targets",
			CacheDir: filepath.Join(cache, name), Now: w.clock})
		if err != nil {
			w.t.Fatal(err)
		}
		return c
	}
	return Sources{Site: mk(w.siteDir, w.ss.URL, "site"), Vendors: map[string]*tuf.Client{"debian": mk(w.vendorDir, w.vs.URL, "debian")}, Group: "web"}
}
