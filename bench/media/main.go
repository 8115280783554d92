// Command media measures offline media: `bulwark media create` (the
// directory, and with --iso the image too) for a vendor repository with S
// bytes of payloads, against tar and xorriso of the same repository
// directory in the same run; and `media import` of those media into a
// server's data directory against a sync (tuf.Mirror over HTTP on loopback)
// of the same repository.
//
// Fairness: every measurement, Bulwark's or the peer's, writes into a new,
// empty ext4 filesystem made for it (mkfs of the same loop image under the
// benchmark's own directory, mounted for that one measurement and unmounted
// after it), so no side pays for files the other one wrote or deleted, or
// for their unflushed pages. The peer and Bulwark alternate (peer first in
// odd rounds, Bulwark first in even ones); the median of the rounds is
// reported, with every run. Both sides run as processes (the bulwark binary
// given by -bulwark; tar, xorriso and sync), so the CPU time is each
// process tree's user + system time. It prints Markdown. Run it with
// bench/media/run.sh, as root (it mounts its loop image).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/bulwarkhq/bulwark/bench/internal/benchrepo"
	"github.com/bulwarkhq/bulwark/internal/media"
	"github.com/bulwarkhq/bulwark/internal/tuf"
)

// mkfsOptions make the filesystem each measurement writes into: ext4
// without a journal, like the root filesystem of the machine the figures
// were first taken on, and no discard.
var mkfsOptions = []string{"-q", "-F", "-t", "ext4", "-O", "^has_journal", "-E", "lazy_itable_init=0,lazy_journal_init=0,nodiscard"}

func main() {
	n := flag.Int("updates", 256, "updates in the catalog")
	total := flag.Int64("bytes", 1<<30, "bytes of payloads in all")
	rounds := flag.Int("rounds", 5, "runs of each measurement (the median is reported)")
	work := flag.String("work", "", "the benchmark's own directory (made by run.sh; removed by it)")
	bulwark := flag.String("bulwark", "", "the bulwark binary to measure")
	flag.Parse()
	if *work == "" || *bulwark == "" {
		log.Fatal("usage: media -work DIR -bulwark BIN [-updates N] [-bytes B] [-rounds R]")
	}
	if err := run(*work, *bulwark, *n, *total, *rounds); err != nil {
		log.Fatal(err)
	}
}

// cost is one measurement: wall time and the user + system time of the
// processes it ran.
type cost struct{ wall, cpu time.Duration }

// runs are the costs of one measurement, in the order they were made.
type runs []cost

func (r runs) median() cost {
	w, c := make([]time.Duration, len(r)), make([]time.Duration, len(r))
	for i, x := range r {
		w[i], c[i] = x.wall, x.cpu
	}
	slices.Sort(w)
	slices.Sort(c)
	m := func(d []time.Duration) time.Duration {
		if len(d)%2 == 1 {
			return d[len(d)/2]
		}
		return (d[len(d)/2-1] + d[len(d)/2]) / 2
	}
	return cost{m(w), m(c)}
}

func (r runs) each() string {
	s := make([]string, len(r))
	for i, x := range r {
		s[i] = fmt.Sprintf("%.2f (%.2f)", x.wall.Seconds(), x.cpu.Seconds())
	}
	return strings.Join(s, ", ")
}

// loopFS is the loop image every measurement gets a new filesystem on.
type loopFS struct{ img, mnt, dev string }

// newLoopFS writes the image once in full (so every later measurement
// overwrites blocks the host filesystem already holds: no measurement pays
// for the host's block allocation).
func newLoopFS(work string, size int64) (*loopFS, error) {
	l := &loopFS{img: filepath.Join(work, "fs.img"), mnt: filepath.Join(work, "mnt")}
	if err := os.MkdirAll(l.mnt, 0o700); err != nil {
		return nil, err
	}
	if err := sh("dd", "if=/dev/zero", "of="+l.img, "bs=4M", fmt.Sprintf("count=%d", size>>22), "oflag=direct", "status=none"); err != nil {
		return nil, err
	}
	return l, nil
}

// fresh makes a new filesystem on the image and mounts it.
func (l *loopFS) fresh() (string, error) {
	if err := sh("mkfs.ext4", append(mkfsOptions, l.img)...); err != nil {
		return "", err
	}
	// Direct I/O: the loop device writes straight to the image's blocks,
	// as a partition would, not through a second page cache.
	b, err := exec.Command("losetup", "--direct-io=on", "-f", "--show", l.img).Output()
	if err != nil {
		return "", fmt.Errorf("losetup --direct-io=on %s: %v", l.img, err)
	}
	l.dev = strings.TrimSpace(string(b))
	if err := sh("mount", "-t", "ext4", "-o", "nodiscard", l.dev, l.mnt); err != nil {
		sh("losetup", "-d", l.dev)
		return "", err
	}
	return l.mnt, nil
}

// release unmounts the filesystem (writing back what is left unflushed,
// outside any measurement) and detaches the loop device.
func (l *loopFS) release() error {
	if err := sh("umount", l.mnt); err != nil {
		return err
	}
	return sh("losetup", "-d", l.dev)
}

// on runs f with a fresh filesystem and times it.
func (l *loopFS) on(f func(dir string) error) (cost, error) {
	dir, err := l.fresh()
	if err != nil {
		return cost{}, err
	}
	c0, start := childCPU(), time.Now()
	err = f(dir)
	c := cost{time.Since(start), childCPU() - c0}
	if rerr := l.release(); err == nil {
		err = rerr
	}
	return c, err
}

func sh(name string, args ...string) error {
	if b, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, b)
	}
	return nil
}

func run(work, bulwark string, n int, total int64, rounds int) error {
	ctx := context.Background()
	vendorDir := filepath.Join(work, "vendor")
	root, err := benchrepo.Build(ctx, vendorDir, n, total)
	if err != nil {
		return err
	}
	log.Printf("built a catalog of %d updates, %d MiB of payloads", n, total>>20)
	// Room for the directory and the image, and the file system's own.
	lfs, err := newLoopFS(work, (2*total+total/2+512<<20)&^(4<<20-1))
	if err != nil {
		return err
	}
	// Settle the repository just written: read every file (both sides
	// then read it from the page cache; the first read of a new file also
	// dirties its inode, relatime) and flush it, so that no measurement
	// shares the disk with its writeback. (tar -cf /dev/null would read
	// nothing: GNU tar skips the data when the archive is /dev/null.)
	if err := settle(vendorDir); err != nil {
		return err
	}

	create := func(iso bool) func(dir string) error {
		return func(dir string) error {
			args := []string{"media", "create", filepath.Join(dir, "media"), "--repo", "bench=" + vendorDir, "--all"}
			if iso {
				args = append(args, "--iso")
			}
			return sh(bulwark, args...)
		}
	}
	// The peer: tar, then xorriso with the options media create gives it,
	// then sync of its two files (media create flushes everything it
	// writes before renaming it: the same durability). Each step's end is
	// kept.
	var tarOnly, tarISO, tarISOSync, dirOnly, withISO runs
	peer := func(dir string) error {
		c0, start := childCPU(), time.Now()
		step := func() cost { return cost{time.Since(start), childCPU() - c0} }
		if err := sh("tar", "-cf", filepath.Join(dir, "peer.tar"), "-C", work, "vendor"); err != nil {
			return err
		}
		tarOnly = append(tarOnly, step())
		if err := sh("xorriso", "-as", "mkisofs", "-o", filepath.Join(dir, "peer.iso"), "-r", "-J", "-joliet-long", "-iso-level", "3", vendorDir); err != nil {
			return err
		}
		tarISO = append(tarISO, step())
		if err := sh("sync", filepath.Join(dir, "peer.tar"), filepath.Join(dir, "peer.iso")); err != nil {
			return err
		}
		tarISOSync = append(tarISOSync, step())
		return nil
	}
	measure := func(into *runs, f func(string) error) error {
		c, err := lfs.on(f)
		if into != nil {
			*into = append(*into, c)
		}
		return err
	}
	for i := range rounds {
		steps := []func() error{
			func() error { return measure(nil, peer) },
			func() error { return measure(&withISO, create(true)) },
			func() error { return measure(&dirOnly, create(false)) },
		}
		if i%2 == 1 {
			slices.Reverse(steps)
		}
		for _, s := range steps {
			if err := s(); err != nil {
				return err
			}
		}
		log.Printf("round %d: create --iso %s; tar + xorriso %s", i+1, withISO[i:].each(), tarISO[i:].each())
	}

	fmt.Printf("| step | Bulwark wall (CPU), median | peer wall (CPU), median | ratio wall (CPU) |\n|---|---|---|---|\n")
	row := func(what string, a, b runs) {
		ma, mb := a.median(), b.median()
		fmt.Printf("| %s | %s (%s) | %s (%s) | **%.2f×** (%.2f×) |\n", what, sec(ma.wall), sec(ma.cpu), sec(mb.wall), sec(mb.cpu), ratio(ma.wall, mb.wall), ratio(ma.cpu, mb.cpu))
	}
	row(fmt.Sprintf("`media create` (directory: verify + copy %d MiB) vs `tar -cf`", total>>20), dirOnly, tarOnly)
	row("`media create --iso` (directory + ISO) vs `tar` + `xorriso`", withISO, tarISO)
	row("`media create --iso` vs `tar` + `xorriso` + `sync` of both (the same durability)", withISO, tarISOSync)

	// Import vs sync of the same content, each into a fresh filesystem too.
	mediaDir := filepath.Join(work, "media")
	if err := sh(bulwark, "media", "create", mediaDir, "--repo", "bench="+vendorDir, "--all"); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go http.Serve(ln, http.FileServer(http.Dir(vendorDir)))
	base := "http://" + ln.Addr().String()
	pins := map[string]string{"bench": tuf.RootFingerprint(root)}
	var imp, syn runs
	for i := range rounds {
		steps := []func() error{
			func() error {
				return measure(&syn, func(dir string) error {
					_, err := tuf.Mirror(ctx, tuf.MirrorConfig{TrustedRoot: root, MetadataURL: base + "/metadata", TargetsURL: base + "/targets", Dir: filepath.Join(dir, "mirror")})
					return err
				})
			},
			func() error {
				return measure(&imp, func(dir string) error {
					data := filepath.Join(dir, "data")
					if err := os.MkdirAll(data, 0o700); err != nil {
						return err
					}
					if err := os.WriteFile(filepath.Join(data, "FORMAT"), []byte("bulwark-data 1\n"), 0o600); err != nil {
						return err
					}
					_, err := media.Import(ctx, media.ImportOptions{Media: mediaDir, DataDir: data, Pins: pins})
					return err
				})
			},
		}
		if i%2 == 1 {
			slices.Reverse(steps)
		}
		for _, s := range steps {
			if err := s(); err != nil {
				return err
			}
		}
	}
	mi, ms := imp.median(), syn.median()
	fmt.Printf("| `media import` vs a sync (tuf.Mirror over HTTP on loopback) of the same content (wall) | %s | %s | %.2f× |\n", sec(mi.wall), sec(ms.wall), ratio(mi.wall, ms.wall))

	fmt.Printf("\nEvery run, in the order made, wall (CPU) in seconds:\n\n")
	fmt.Printf("- `media create --iso`: %s\n", withISO.each())
	fmt.Printf("- `tar` + `xorriso`: %s\n", tarISO.each())
	fmt.Printf("- `tar` + `xorriso` + `sync`: %s\n", tarISOSync.each())
	fmt.Printf("- `media create` (directory): %s\n", dirOnly.each())
	fmt.Printf("- `tar -cf`: %s\n", tarOnly.each())
	fmt.Printf("- `media import` (wall): %s; sync (wall): %s\n", wallEach(imp), wallEach(syn))

	mw, mp := withISO.median(), tarISO.median()
	goal := ratio(mw.wall, mp.wall)
	verdict := "met"
	if goal > 1.2 {
		verdict = "NOT met"
	}
	fmt.Printf("\nGoal `media create --iso` ≤ 1.2× `tar` + `xorriso` (wall time, median of %d): **%.2f×, %s** (CPU time %.2f×; with the peer's `sync`, wall %.2f×).\n",
		rounds, goal, verdict, ratio(mw.cpu, mp.cpu), ratio(mw.wall, tarISOSync.median().wall))
	return nil
}

// settle reads every file under dir and flushes it.
func settle(dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		if _, err := io.Copy(io.Discard, f); err != nil {
			return err
		}
		return f.Sync()
	})
}

func wallEach(r runs) string {
	s := make([]string, len(r))
	for i, x := range r {
		s[i] = fmt.Sprintf("%.2f", x.wall.Seconds())
	}
	return strings.Join(s, ", ")
}

// childCPU is the user and system time of the child processes waited for.
func childCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func sec(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }

func ratio(a, b time.Duration) float64 { return a.Seconds() / b.Seconds() }
