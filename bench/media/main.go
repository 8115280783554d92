// Command media measures offline media: `media create` (the directory,
// every payload verified against its signed hash as it is copied, then the
// ISO with xorriso) for a vendor repository with S bytes of payloads,
// against tar and xorriso of the same repository directory in the same run;
// and `media import` of those media into a server's data directory against
// a sync (tuf.Mirror over HTTP on loopback) of the same repository. Each is
// run twice, alternating with its peer, and the faster run is kept. It
// prints a Markdown table. Run it with bench/media/run.sh.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/bulwarkhq/bulwark/bench/internal/benchrepo"
	"github.com/bulwarkhq/bulwark/internal/media"
	"github.com/bulwarkhq/bulwark/internal/tuf"
)

func main() {
	n := flag.Int("updates", 256, "updates in the catalog")
	total := flag.Int64("bytes", 1<<30, "bytes of payloads in all")
	flag.Parse()
	if err := run(*n, *total); err != nil {
		log.Fatal(err)
	}
}

func run(n int, total int64) error {
	ctx := context.Background()
	work, err := os.MkdirTemp("", "bulwark-bench-media-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	vendorDir := filepath.Join(work, "vendor")
	root, err := benchrepo.Build(ctx, vendorDir, n, total)
	if err != nil {
		return err
	}
	log.Printf("built a catalog of %d updates, %d MiB of payloads", n, total>>20)

	// Create: directory + ISO, against tar + xorriso of the repository.
	create := func(i int) (time.Duration, time.Duration, error) {
		out := filepath.Join(work, fmt.Sprintf("media%d", i))
		start := time.Now()
		if _, err := media.Create(ctx, media.CreateOptions{Out: out, Vendors: []media.Source{{Name: "bench", Dir: vendorDir, Root: root}}, Select: media.Selection{All: true}}); err != nil {
			return 0, 0, err
		}
		dir := time.Since(start)
		if err := media.WriteISO(ctx, out, out+".iso", media.DefaultDate); err != nil {
			return 0, 0, err
		}
		return dir, time.Since(start), nil
	}
	var best [5]time.Duration
	keep := func(i int, d time.Duration) {
		if best[i] == 0 || d < best[i] {
			best[i] = d
		}
	}
	peer := func(i int) (time.Duration, time.Duration, error) {
		out := filepath.Join(work, fmt.Sprintf("peer%d", i))
		start := time.Now()
		if b, err := exec.Command("tar", "-cf", out+".tar", "-C", work, "vendor").CombinedOutput(); err != nil {
			return 0, 0, fmt.Errorf("tar: %v: %s", err, b)
		}
		tarT := time.Since(start)
		if b, err := exec.Command("xorriso", "-as", "mkisofs", "-o", out+".iso", "-r", "-J", "-joliet-long", "-iso-level", "3", vendorDir).CombinedOutput(); err != nil {
			return 0, 0, fmt.Errorf("xorriso: %v: %s", err, b)
		}
		all := time.Since(start)
		// The same durability as media create, which flushes the
		// directory before renaming it and the ISO before renaming it.
		if b, err := exec.Command("sync", out+".tar", out+".iso").CombinedOutput(); err != nil {
			return 0, 0, fmt.Errorf("sync: %v: %s", err, b)
		}
		keep(4, time.Since(start))
		return tarT, all, nil
	}
	for i := range 2 {
		d, all, err := create(i)
		if err != nil {
			return err
		}
		keep(0, d)
		keep(1, all)
		t, tx, err := peer(i)
		if err != nil {
			return err
		}
		keep(2, t)
		keep(3, tx)
		for _, p := range []string{fmt.Sprintf("media%d.iso", i), fmt.Sprintf("peer%d.tar", i), fmt.Sprintf("peer%d.iso", i)} {
			os.Remove(filepath.Join(work, p))
		}
		if i == 0 {
			os.RemoveAll(filepath.Join(work, "media0"))
		}
	}
	mediaDir := filepath.Join(work, "media1")
	fmt.Printf("| step | Bulwark | peer | ratio |\n|---|---|---|---|\n")
	fmt.Printf("| media directory (verify + copy %d MiB) vs `tar -cf` | %s | %s | %.2f× |\n", total>>20, sec(best[0]), sec(best[2]), ratio(best[0], best[2]))
	fmt.Printf("| `media create --iso` (directory + ISO) vs `tar` + `xorriso` | %s | %s | %.2f× |\n", sec(best[1]), sec(best[3]), ratio(best[1], best[3]))
	fmt.Printf("| `media create --iso` vs `tar` + `xorriso` + `sync` of both (the same durability) | %s | %s | %.2f× |\n", sec(best[1]), sec(best[4]), ratio(best[1], best[4]))

	// Import vs sync of the same content.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go http.Serve(ln, http.FileServer(http.Dir(vendorDir)))
	base := "http://" + ln.Addr().String()
	pins := map[string]string{"bench": tuf.RootFingerprint(root)}
	var imp, syn time.Duration
	for i := range 2 {
		data := filepath.Join(work, fmt.Sprintf("data%d", i))
		os.MkdirAll(data, 0o700)
		os.WriteFile(filepath.Join(data, "FORMAT"), []byte("bulwark-data 1\n"), 0o600)
		start := time.Now()
		if _, err := media.Import(ctx, media.ImportOptions{Media: mediaDir, DataDir: data, Pins: pins}); err != nil {
			return err
		}
		if d := time.Since(start); imp == 0 || d < imp {
			imp = d
		}
		os.RemoveAll(data)
		mirror := filepath.Join(work, fmt.Sprintf("mirror%d", i))
		start = time.Now()
		if _, err := tuf.Mirror(ctx, tuf.MirrorConfig{TrustedRoot: root, MetadataURL: base + "/metadata", TargetsURL: base + "/targets", Dir: mirror}); err != nil {
			return err
		}
		if d := time.Since(start); syn == 0 || d < syn {
			syn = d
		}
		os.RemoveAll(mirror)
	}
	fmt.Printf("| `media import` vs a sync (tuf.Mirror over HTTP on loopback) of the same content | %s | %s | %.2f× |\n", sec(imp), sec(syn), ratio(imp, syn))
	return nil
}

func sec(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }

func ratio(a, b time.Duration) float64 { return a.Seconds() / b.Seconds() }
