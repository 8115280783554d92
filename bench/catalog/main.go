// Command catalog measures the signed catalog at scale: catalogs of 100,
// 10,000 and 100,000 synthetic updates, the time to publish one more update,
// the metadata bytes an agent fetches to look one update up (raw and gzip),
// and the size of each metadata file. As a peer it measures, in the same run,
// what an APT repository of the same size costs: the Packages index that an
// apt client downloads whole (xz) and the time to recompress it on publish.
//
// It is a benchmark, not a test: run it with bench/catalog/run.sh.
package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/bulwarkhq/bulwark/internal/fetch"
	"github.com/bulwarkhq/bulwark/internal/tuf"
)

func main() {
	sizes := flag.String("sizes", "100,10000,100000", "catalog sizes")
	work := flag.String("work", "", "work directory (default: a temporary one)")
	flag.Parse()
	if *work == "" {
		d, err := os.MkdirTemp("", "bulwark-bench-catalog-")
		if err != nil {
			log.Fatal(err)
		}
		defer os.RemoveAll(d)
		*work = d
	}
	fmt.Println("| updates | bins | publish one more (median of 5) | APT peer: recompress Packages (xz -6) | lookup bytes raw | lookup bytes gzip | + payload target raw / gzip | APT peer: Packages.xz an apt client fetches | snapshot | targets | bin (avg / max) | timestamp | root |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, s := range strings.Split(*sizes, ",") {
		var n int
		fmt.Sscan(s, &n)
		if err := measure(context.Background(), filepath.Join(*work, s), n); err != nil {
			log.Fatalf("%d updates: %v", n, err)
		}
	}
}

func writeUpdate(dir string, i int) (string, error) {
	id := fmt.Sprintf("BW-2026-%06d", i)
	payload := fmt.Sprintf("lib%06d_1.0.%d-1_amd64.deb", i, i%7)
	body := bytes.Repeat([]byte(id), 32)
	if err := os.WriteFile(filepath.Join(dir, payload), body, 0o644); err != nil {
		return "", err
	}
	y := fmt.Sprintf(`id: %s
title: Security update for lib%06d
product: debian-12
classification: security
severity: important
cves: [CVE-2026-%05d]
released: 2026-11-20
reboot: never
applies_to:
  - deb: {package: lib%06d, installed: true, version_lt: "1.0.%d-1"}
installer: {type: archive, prefix: /opt/bw-bench}
payloads:
  - file: %s
`, id, i, i%100000, i, i%7, payload)
	p := filepath.Join(dir, id+".yaml")
	return p, os.WriteFile(p, []byte(y), 0o644)
}

func measure(ctx context.Context, dir string, n int) error {
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		return err
	}
	repoDir := filepath.Join(dir, "repo")
	r, err := tuf.Init(repoDir, tuf.InitOptions{Name: "bench"}, tuf.Options{})
	if err != nil {
		return err
	}
	defer r.Close()
	const chunk = 5000
	var batch []string
	for i := 1; i <= n; i++ {
		p, err := writeUpdate(src, i)
		if err != nil {
			return err
		}
		batch = append(batch, p)
		if len(batch) == chunk || i == n {
			if _, err := r.PublishMany(ctx, batch, tuf.PublishOptions{}); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}

	// Publish one more, five times, through the same path as
	// `bulwark repo publish DIR ONE.yaml` (every file fsynced).
	var times []time.Duration
	for k := 1; k <= 5; k++ {
		p, err := writeUpdate(src, n+k)
		if err != nil {
			return err
		}
		start := time.Now()
		if _, err := r.Publish(ctx, p, tuf.PublishOptions{}); err != nil {
			return err
		}
		times = append(times, time.Since(start))
	}
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })

	id := fmt.Sprintf("BW-2026-%06d", n/2+1)
	rawU, rawP, err := lookupBytes(ctx, repoDir, id, false)
	if err != nil {
		return err
	}
	gzU, gzP, err := lookupBytes(ctx, repoDir, id, true)
	if err != nil {
		return err
	}
	sizes, err := metaSizes(repoDir)
	if err != nil {
		return err
	}
	aptXZ, aptTime, err := aptPeer(dir, n)
	if err != nil {
		return err
	}
	fmt.Printf("| %d | %d | %s | %s | %s | %s | %s / %s | %s | %s | %s | %s / %s | %s | %s |\n",
		n, sizes.bins, times[2].Round(time.Millisecond), aptTime.Round(time.Millisecond),
		kb(rawU), kb(gzU), kb(rawP), kb(gzP), kb(aptXZ),
		kb(sizes.snapshot), kb(sizes.targets), kb(sizes.binAvg), kb(sizes.binMax), kb(sizes.timestamp), kb(sizes.root))
	return nil
}

func kb(n int64) string { return fmt.Sprintf("%.1f KB", float64(n)/1000) }

// lookupBytes serves the repository on loopback, counting every byte of
// every response body, and looks one update up with a new client (nothing
// cached but the root it was given), then its payload's target info.
func lookupBytes(ctx context.Context, repoDir, id string, gz bool) (update, withPayload int64, err error) {
	var n atomic.Int64
	files := http.FileServer(http.Dir(repoDir))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		files.ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		if gz && rec.Code == 200 && strings.HasSuffix(r.URL.Path, ".json") && strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
			var b bytes.Buffer
			zw, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
			zw.Write(body)
			zw.Close()
			body = b.Bytes()
			w.Header().Set("Content-Encoding", "gzip")
			w.Header().Del("Content-Length")
		}
		w.WriteHeader(rec.Code)
		m, _ := w.Write(body)
		n.Add(int64(m))
	}))
	defer srv.Close()
	root, err := os.ReadFile(filepath.Join(repoDir, "metadata", "root.json"))
	if err != nil {
		return 0, 0, err
	}
	cache, err := os.MkdirTemp("", "bench-client-")
	if err != nil {
		return 0, 0, err
	}
	defer os.RemoveAll(cache)
	c, err := tuf.NewClient(tuf.ClientConfig{TrustedRoot: root, MetadataURL: srv.URL + "/metadata", TargetsURL: srv.URL + "/targets",
		CacheDir: cache, Fetcher: fetch.New(fetch.Options{})})
	if err != nil {
		return 0, 0, err
	}
	info, err := c.Update(ctx, id)
	if err != nil {
		return 0, 0, err
	}
	update = n.Load()
	if _, err := c.Payload(ctx, info, info.Update.Payloads[0].File); err != nil {
		return 0, 0, err
	}
	return update, n.Load(), nil
}

type metaSize struct {
	bins                                               int
	root, timestamp, snapshot, targets, binAvg, binMax int64
}

func metaSizes(repoDir string) (metaSize, error) {
	var s metaSize
	md := filepath.Join(repoDir, "metadata")
	size := func(name string) int64 {
		fi, err := os.Stat(filepath.Join(md, name))
		if err != nil {
			return 0
		}
		return fi.Size()
	}
	s.root, s.timestamp = size("root.json"), size("timestamp.json")
	rep, err := tuf.Verify(context.Background(), repoDir, nil, time.Now())
	if err != nil {
		return s, err
	}
	s.snapshot = size(fmt.Sprintf("%d.snapshot.json", rep.SnapshotVersion))
	entries, err := os.ReadDir(md)
	if err != nil {
		return s, err
	}
	// The current version of each bin and of targets is the highest.
	latest := map[string]int64{}
	best := map[string]int{}
	for _, e := range entries {
		var v int
		var role string
		if k, _ := fmt.Sscanf(e.Name(), "%d.%s", &v, &role); k == 2 && v >= best[role] {
			best[role] = v
			fi, _ := e.Info()
			latest[role] = fi.Size()
		}
	}
	var total int64
	for role, sz := range latest {
		switch {
		case role == "targets.json":
			s.targets = sz
		case strings.HasPrefix(role, "bins-"):
			s.bins++
			total += sz
			if sz > s.binMax {
				s.binMax = sz
			}
		}
	}
	if s.bins > 0 {
		s.binAvg = total / int64(s.bins)
	}
	return s, nil
}

// aptPeer writes the Packages index an APT repository of n packages would
// carry (one realistic stanza per package) and compresses it with xz, as a
// repository must on every publish; an apt client downloads the whole
// Packages.xz to look any package up.
func aptPeer(dir string, n int) (int64, time.Duration, error) {
	var b bytes.Buffer
	for i := 1; i <= n; i++ {
		sum := sha256.Sum256([]byte(fmt.Sprint(i)))
		md := sha256.Sum256([]byte(fmt.Sprint(-i)))
		fmt.Fprintf(&b, `Package: lib%06d
Version: 1.0.%d-1
Installed-Size: %d
Maintainer: Debian Security Team <team@security.debian.org>
Architecture: amd64
Depends: libc6 (>= 2.36)
Description: security update for lib%06d
Homepage: https://example.invalid/lib%06d
Description-md5: %s
Section: libs
Priority: optional
Filename: pool/main/l/lib%06d/lib%06d_1.0.%d-1_amd64.deb
Size: %d
MD5sum: %s
SHA256: %s

`, i, i%7, 100+i%900, i, i, hex.EncodeToString(md[:16]), i, i, i%7, 20000+i%50000, hex.EncodeToString(md[:16]), hex.EncodeToString(sum[:]))
	}
	p := filepath.Join(dir, "Packages")
	if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
		return 0, 0, err
	}
	start := time.Now()
	cmd := exec.Command("xz", "-6", "-k", "-f", p)
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return 0, 0, fmt.Errorf("xz: %w", err)
	}
	d := time.Since(start)
	fi, err := os.Stat(p + ".xz")
	if err != nil {
		return 0, 0, err
	}
	return fi.Size(), d, nil
}
