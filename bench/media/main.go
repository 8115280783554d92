// Command media measures offline media: `media create` (the directory,
// every payload verified against its signed hash as it is copied, and with
// --iso the image by xorriso at the same time, compared with the directory
// after; everything flushed before it is renamed) for a vendor repository
// with S bytes of payloads, against tar and xorriso of the same repository
// directory in the same run; and `media import` of those media into a
// server's data directory against a sync (tuf.Mirror over HTTP on loopback)
// of the same repository. Each runs -rounds times, alternating with its
// peer, and the best wall and CPU times are kept. It prints a Markdown
// table. Run it with bench/media/run.sh.
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
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/bulwarkhq/bulwark/bench/internal/benchrepo"
	"github.com/bulwarkhq/bulwark/internal/media"
	"github.com/bulwarkhq/bulwark/internal/tuf"
)

// rounds is how often each measurement runs, alternating with its peer;
// the best of each is kept.
var rounds = 3

func main() {
	n := flag.Int("updates", 256, "updates in the catalog")
	total := flag.Int64("bytes", 1<<30, "bytes of payloads in all")
	flag.IntVar(&rounds, "rounds", 3, "runs of each measurement (the best is kept)")
	prof := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	flag.Parse()
	if *prof != "" {
		f, err := os.Create(*prof)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	if err := run(*n, *total); err != nil {
		pprof.StopCPUProfile()
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

	// Create: the directory alone against tar, and directory + ISO (one
	// media.Create with CreateOptions.ISO, what `media create --iso` does)
	// against tar + xorriso of the repository. Wall time and CPU time (user +
	// system, this process's and its children's: xorriso, tar).
	type cost struct{ wall, cpu time.Duration }
	measure := func(f func() error) (cost, error) {
		c0, start := cpuTime(), time.Now()
		err := f()
		return cost{time.Since(start), cpuTime() - c0}, err
	}
	var best [5]cost
	keep := func(i int, c cost) {
		if best[i].wall == 0 || c.wall < best[i].wall {
			best[i].wall = c.wall
		}
		if best[i].cpu == 0 || c.cpu < best[i].cpu {
			best[i].cpu = c.cpu
		}
	}
	sh := func(name string, args ...string) error {
		if b, err := exec.Command(name, args...).CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %v: %s", name, err, b)
		}
		return nil
	}
	// The media made here are kept until the run ends: on ext4 without a
	// journal, creating a file right after thousands were deleted nearby
	// costs a scan past every recently deleted inode, a cost of the
	// benchmark's own clean-up that a single create does not pay. The
	// peer's two files are deleted at once, as before, so their dirty
	// pages are dropped and never written back during a later measurement
	// (media are flushed before Create returns: keeping them leaves no
	// writeback behind).
	mediaDir := ""
	for i := range rounds {
		dirOut := filepath.Join(work, fmt.Sprintf("dir%d", i))
		c, err := measure(func() error {
			_, err := media.Create(ctx, media.CreateOptions{Out: dirOut, Vendors: []media.Source{{Name: "bench", Dir: vendorDir, Root: root}}, Select: media.Selection{All: true}})
			return err
		})
		if err != nil {
			return err
		}
		keep(0, c)
		tarOut := filepath.Join(work, fmt.Sprintf("peer%d.tar", i))
		if c, err = measure(func() error { return sh("tar", "-cf", tarOut, "-C", work, "vendor") }); err != nil {
			return err
		}
		keep(2, c)
		os.Remove(tarOut)

		out := filepath.Join(work, fmt.Sprintf("media%d", i))
		c, err = measure(func() error {
			_, err := media.Create(ctx, media.CreateOptions{Out: out, ISO: out + ".iso", Vendors: []media.Source{{Name: "bench", Dir: vendorDir, Root: root}}, Select: media.Selection{All: true}})
			return err
		})
		if err != nil {
			return err
		}
		keep(1, c)
		mediaDir = out
		peer := filepath.Join(work, fmt.Sprintf("peer%d", i))
		var synced time.Duration
		c, err = measure(func() error {
			if err := sh("tar", "-cf", peer+".tar", "-C", work, "vendor"); err != nil {
				return err
			}
			if err := sh("xorriso", "-as", "mkisofs", "-o", peer+".iso", "-r", "-J", "-joliet-long", "-iso-level", "3", vendorDir); err != nil {
				return err
			}
			// The same durability as media create, which flushes the
			// directory and the image before renaming them.
			t := time.Now()
			err := sh("sync", peer+".tar", peer+".iso")
			synced = time.Since(t)
			return err
		})
		if err != nil {
			return err
		}
		keep(4, c)
		keep(3, cost{c.wall - synced, c.cpu})
		os.Remove(peer + ".tar")
		os.Remove(peer + ".iso")
		log.Printf("round %d: %v", i+1, best)
	}
	fmt.Printf("| step | Bulwark wall (CPU) | peer wall (CPU) | ratio wall (CPU) |\n|---|---|---|---|\n")
	row := func(what string, a, b cost) {
		fmt.Printf("| %s | %s (%s) | %s (%s) | **%.2f×** (%.2f×) |\n", what, sec(a.wall), sec(a.cpu), sec(b.wall), sec(b.cpu), ratio(a.wall, b.wall), ratio(a.cpu, b.cpu))
	}
	row(fmt.Sprintf("media directory (verify + copy %d MiB) vs `tar -cf`", total>>20), best[0], best[2])
	row("`media create --iso` (directory + ISO) vs `tar` + `xorriso`", best[1], best[3])
	row("`media create --iso` vs `tar` + `xorriso` + `sync` of both (the same durability)", best[1], best[4])
	goal := ratio(best[1].wall, best[3].wall)

	// Import vs sync of the same content.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go http.Serve(ln, http.FileServer(http.Dir(vendorDir)))
	base := "http://" + ln.Addr().String()
	pins := map[string]string{"bench": tuf.RootFingerprint(root)}
	var imp, syn time.Duration
	for i := range rounds {
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
	verdict := "met"
	if goal > 1.2 {
		verdict = "NOT met"
	}
	fmt.Printf("\nGoal `media create --iso` ≤ 1.2× `tar` + `xorriso` (wall time, best of %d): **%.2f×, %s**.\n", rounds, goal, verdict)
	return nil
}

// cpuTime is the user and system time of this process and of its children
// that have been waited for.
func cpuTime() time.Duration {
	var self, children syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &self)
	syscall.Getrusage(syscall.RUSAGE_CHILDREN, &children)
	tv := func(t syscall.Timeval) time.Duration { return time.Duration(t.Nano()) }
	return tv(self.Utime) + tv(self.Stime) + tv(children.Utime) + tv(children.Stime)
}

func sec(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }

func ratio(a, b time.Duration) float64 { return a.Seconds() / b.Seconds() }
