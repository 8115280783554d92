// Command sync measures tuf.Mirror, the sync behind `bulwark server`'s
// upstream mode: a vendor repository of N updates with S bytes of payloads,
// served over HTTP on loopback, mirrored in full (every file verified before
// it becomes visible), then synced again with nothing new. The peer, in the
// same run and from the same server, is one curl process fetching the same
// files one after another with no verification at all. It prints a Markdown
// table. Run it with bench/sync/run.sh.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/bulwarkhq/bulwark/bench/internal/benchrepo"
	"github.com/bulwarkhq/bulwark/internal/tuf"
)

func main() {
	n := flag.Int("updates", 10000, "updates in the catalog")
	total := flag.Int64("bytes", 1<<30, "bytes of payloads in all")
	flag.Parse()
	if err := run(*n, *total); err != nil {
		log.Fatal(err)
	}
}

func run(n int, total int64) error {
	ctx := context.Background()
	work, err := os.MkdirTemp("", "bulwark-bench-sync-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	vendorDir := filepath.Join(work, "vendor")
	start := time.Now()
	if _, err := benchrepo.Build(ctx, vendorDir, n, total); err != nil {
		return err
	}
	log.Printf("built a catalog of %d updates, %d MiB of payloads, in %s", n, total>>20, time.Since(start).Round(time.Second))

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go http.Serve(ln, http.FileServer(http.Dir(vendorDir)))
	base := "http://" + ln.Addr().String()
	root, err := os.ReadFile(filepath.Join(vendorDir, "metadata", "1.root.json"))
	if err != nil {
		return err
	}
	cfg := tuf.MirrorConfig{TrustedRoot: root, MetadataURL: base + "/metadata", TargetsURL: base + "/targets", Dir: filepath.Join(work, "mirror")}

	dropCaches()
	start = time.Now()
	res, err := tuf.Mirror(ctx, cfg)
	if err != nil {
		return err
	}
	full := time.Since(start)
	var again []time.Duration
	for i := 0; i < 5; i++ {
		start = time.Now()
		res2, err := tuf.Mirror(ctx, cfg)
		if err != nil {
			return err
		}
		if res2.Changed {
			return fmt.Errorf("a sync with nothing new changed the mirror")
		}
		again = append(again, time.Since(start))
	}
	sort.Slice(again, func(i, j int) bool { return again[i] < again[j] })

	// The peer: the same files, fetched by one curl process in sequence.
	var urls []string
	filepath.Walk(filepath.Join(work, "mirror"), func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() && !strings.HasPrefix(fi.Name(), ".") {
			rel, _ := filepath.Rel(filepath.Join(work, "mirror"), p)
			urls = append(urls, base+"/"+rel)
		}
		return nil
	})
	var conf bytes.Buffer
	out := filepath.Join(work, "curl")
	os.MkdirAll(out, 0o755)
	for i, u := range urls {
		fmt.Fprintf(&conf, "url = \"%s\"\noutput = \"%s/%d\"\n", u, out, i)
	}
	confPath := filepath.Join(work, "curl.conf")
	os.WriteFile(confPath, conf.Bytes(), 0o644)
	dropCaches()
	start = time.Now()
	cmd := exec.Command("curl", "-sS", "--fail", "-K", confPath)
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("curl: %w", err)
	}
	curl := time.Since(start)

	fmt.Println("| measure | bulwark sync (tuf.Mirror) | peer: sequential curl, no verification | ratio |")
	fmt.Println("|---|---|---|---|")
	fmt.Printf("| full sync of %d updates, %d MiB of payloads (%d files, %d MiB fetched) | %s | %s | %.2f× |\n",
		n, total>>20, len(urls), res.BytesFetched>>20, full.Round(10*time.Millisecond), curl.Round(10*time.Millisecond), float64(full)/float64(curl))
	fmt.Printf("| sync with nothing new (median of 5) | %s | — | goal ≤ 200 ms |\n", again[2].Round(time.Millisecond))
	return nil
}

// dropCaches asks the kernel to drop clean page cache so that both runs
// start cold; it needs root and is skipped without it.
func dropCaches() {
	exec.Command("sync").Run()
	os.WriteFile("/proc/sys/vm/drop_caches", []byte("1"), 0o200)
}
