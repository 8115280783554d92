package media

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode"

	"golang.org/x/sync/errgroup"
)

// Grafting. `media create --iso` writes the media directory and its image.
// Made one after the other, xorriso would wait for every file to be
// written and every payload hashed, then read them all again. Instead the
// files are grafted: xorriso reads each one straight from the source
// repository it comes from (its pathspecs name the source file for each
// place in the image) while Create writes the directory, so the image and
// the directory are made at the same time, on different cores. Then every
// file's bytes in the image are compared with the directory's, which hold
// only verified bytes, so the image holds exactly them even if a source
// file changed while xorriso read it. Files with no source (the manifest,
// the README, the lockdown rules) and sources that cannot be grafted are
// written first and copied into the small directory xorriso makes the rest
// of the image from. The image is the same bytes as WriteISO of the
// finished directory: every date in it is the media's date and -r sets
// owners and modes, so nothing of a source file but its bytes reaches the
// image.

// graftable reports whether xorriso may read job j from its source: a
// regular file (xorriso would record a link as a link) whose path can be
// written in a pathspec list, and whose place has a plain name (xorriso's
// report of the image quotes nothing else).
func graftable(j copyJob) (fileID, bool) {
	if j.src == "" || !plainPath(j.dst) || strings.ContainsFunc(j.src, unicode.IsControl) {
		return fileID{}, false
	}
	fi, err := os.Lstat(j.src)
	if err != nil || !fi.Mode().IsRegular() {
		return fileID{}, false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}, false
	}
	return fileID{uint64(st.Dev), uint64(st.Ino)}, true
}

// fileID identifies a file: xorriso stores the bytes of one file once,
// however many places in the image it is grafted to.
type fileID struct{ dev, ino uint64 }

// plainPath reports whether p has only characters that need no quoting in
// a pathspec or in xorriso's report.
func plainPath(p string) bool {
	for _, r := range p {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case strings.ContainsRune("/._-+~@%:", r):
		default:
			return false
		}
	}
	return p != ""
}

// writeWithImage writes jobs[i] into dir (checking each against files[i],
// calling done with each file written) and the image of dir to iso, the
// two at once, and checks that the image holds exactly the directory's
// files with the same bytes (as sameInImage): as soon as xorriso has
// finished, every file already written is compared, and each one written
// later as soon as it is, so the comparison overlaps the rest of the
// copying instead of following it.
func writeWithImage(ctx context.Context, dir, iso string, date time.Time, jobs []copyJob, files []FileEntry, progress func(string, int64, int64), done func(int, string) error) error {
	root, err := os.MkdirTemp(filepath.Dir(dir), filepath.Base(dir)+"-image-")
	if err != nil {
		return fmt.Errorf("create media: %w", err)
	}
	defer os.RemoveAll(root)
	if err := os.Chmod(root, 0o755); err != nil {
		return err
	}
	grafted := make([]bool, len(jobs))
	seen := map[fileID]bool{}
	var specs bytes.Buffer
	for i, j := range jobs {
		id, ok := graftable(j)
		if !ok || seen[id] {
			continue
		}
		seen[id], grafted[i] = true, true
		src, err := filepath.Abs(j.src)
		if err != nil {
			return err
		}
		fmt.Fprintf(&specs, "/%s=%s\n", pathspecEscape(j.dst), pathspecEscape(src))
	}
	// What xorriso cannot read from a source: written first, and copied
	// into its root.
	at := func(dir string, want bool) func(int) string {
		return func(i int) string {
			if grafted[i] != want {
				return ""
			}
			return filepath.Join(dir, filepath.FromSlash(jobs[i].dst))
		}
	}
	// Every file written, by its index, for the comparison with the image
	// (each is written once: never blocks).
	written := make(chan int, len(jobs))
	writtenDone := func(i int, p string) error {
		if err := done(i, p); err != nil {
			return err
		}
		written <- i
		return nil
	}
	if err := copyJobs(ctx, jobs, at(dir, false), files, progress, writtenDone); err != nil {
		return err
	}
	for i, j := range jobs {
		if !grafted[i] {
			if err := copyFile(filepath.Join(dir, filepath.FromSlash(j.dst)), filepath.Join(root, filepath.FromSlash(j.dst))); err != nil {
				return fmt.Errorf("create media: %w", err)
			}
		}
	}
	list := root + ".pathspecs"
	if err := os.WriteFile(list, specs.Bytes(), 0o600); err != nil {
		return fmt.Errorf("create media: %w", err)
	}
	defer os.Remove(list)
	g, gctx := errgroup.WithContext(ctx)
	copied := make(chan struct{})
	imaged := make(chan struct{})
	g.Go(func() error {
		if testHookBeforeImage != nil {
			testHookBeforeImage(copied)
		}
		if err := xorrisoImage(gctx, root, list, iso, date); err != nil {
			return err
		}
		close(imaged)
		return nil
	})
	graftedAt := at(dir, true)
	if testHookBeforeCopy != nil {
		graftedAt = func(i int) string {
			p := at(dir, true)(i)
			if p != "" {
				testHookBeforeCopy(jobs[i].dst, imaged)
			}
			return p
		}
	}
	g.Go(func() error {
		defer close(written)
		defer close(copied)
		return copyJobs(gctx, jobs, graftedAt, files, progress, writtenDone)
	})
	g.Go(func() error {
		select {
		case <-imaged:
		case <-gctx.Done():
			return gctx.Err()
		}
		return compareWritten(gctx, iso, dir, files, written)
	})
	return g.Wait()
}

// testHookBeforeImage, if set, runs before xorriso starts; copied is
// closed when the directory's files are written.
var testHookBeforeImage func(copied <-chan struct{})

// testHookComparing, if set, runs when the comparison of the directory
// with the image starts.
var testHookComparing func()

// testHookBeforeCopy, if set, runs before a grafted file is copied into
// the directory (dst: its place on the media); imaged is closed when
// xorriso has written the image.
var testHookBeforeCopy func(dst string, imaged <-chan struct{})

// copyFile copies the file src to the new file dst, making its directory.
func copyFile(src, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// extent is one stretch of a file's bytes in an ISO image.
type extent struct{ offset, size int64 }

// imageExtents lists where each file's bytes are in the image iso, by its
// path in the image ("/vendors/…"), from xorriso's report_lba.
func imageExtents(ctx context.Context, iso string) (map[string][]extent, error) {
	x, err := xorriso()
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, x, "-indev", iso, "-find", "/", "-type", "f", "-exec", "report_lba", "--")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("read %s with xorriso: %w: %s", iso, err, lastLines(stderr.String(), 5))
	}
	ext := map[string][]extent{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		// File data lba:  0 ,      716 ,        1 ,      227 , '/MANIFEST.json'
		rest, ok := strings.CutPrefix(sc.Text(), "File data lba:")
		if !ok {
			continue
		}
		f := strings.SplitN(rest, ",", 5)
		if len(f) != 5 {
			return nil, fmt.Errorf("read %s with xorriso: unexpected report line %q", iso, sc.Text())
		}
		lba, err1 := strconv.ParseInt(strings.TrimSpace(f[1]), 10, 64)
		size, err2 := strconv.ParseInt(strings.TrimSpace(f[3]), 10, 64)
		p := strings.TrimSpace(f[4])
		if err1 != nil || err2 != nil || len(p) < 2 || p[0] != '\'' || p[len(p)-1] != '\'' {
			return nil, fmt.Errorf("read %s with xorriso: unexpected report line %q", iso, sc.Text())
		}
		p = p[1 : len(p)-1]
		ext[p] = append(ext[p], extent{lba * 2048, size})
	}
	return ext, sc.Err()
}

// sameInImage checks that the image iso holds exactly the files of the
// media directory dir (files), with the same bytes.
func sameInImage(ctx context.Context, iso, dir string, files []FileEntry) error {
	all := make(chan int, len(files))
	for i := range files {
		all <- i
	}
	close(all)
	return compareWritten(ctx, iso, dir, files, all)
}

// compareWritten checks that the image iso holds exactly the files of the
// media directory dir (files), with the same bytes, comparing files[i]
// for each i received from written (each once) until it is closed, several
// at once.
func compareWritten(ctx context.Context, iso, dir string, files []FileEntry, written <-chan int) error {
	ext, err := imageExtents(ctx, iso)
	if err != nil {
		return err
	}
	if len(ext) != len(files) {
		return fmt.Errorf("image %s: %d files, the media directory %d", iso, len(ext), len(files))
	}
	img, unmap, err := mapFile(iso)
	if err != nil {
		return err
	}
	defer unmap()
	if testHookComparing != nil {
		testHookComparing()
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.GOMAXPROCS(0))
	n := 0
	for i := range written {
		if gctx.Err() != nil {
			break
		}
		n++
		f := files[i]
		g.Go(func() error {
			if err := gctx.Err(); err != nil {
				return err
			}
			e, ok := ext["/"+f.Path]
			if !ok {
				return fmt.Errorf("image %s: no %s in it", iso, f.Path)
			}
			if err := sameBytes(img, e, filepath.Join(dir, filepath.FromSlash(f.Path)), f.Length); err != nil {
				return fmt.Errorf("image %s: %s: %w (its source changed while the image was made; make the media again)", iso, f.Path, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if n != len(files) {
		return fmt.Errorf("image %s: %d of the media directory's %d files compared with it", iso, n, len(files))
	}
	return nil
}

// sameBytes compares the extents of the image img with the file copy of
// length n.
func sameBytes(img []byte, ext []extent, copy string, n int64) error {
	var total int64
	for _, e := range ext {
		total += e.size
		if e.offset < 0 || e.size < 0 || e.offset+e.size > int64(len(img)) {
			return fmt.Errorf("an extent of %d bytes at %d lies outside the image", e.size, e.offset)
		}
	}
	if total != n {
		return fmt.Errorf("%d bytes in the image, %d verified", total, n)
	}
	b, unmap, err := mapFile(copy)
	if err != nil {
		return err
	}
	defer unmap()
	if int64(len(b)) != n {
		return fmt.Errorf("the copy has %d bytes, %d verified", len(b), n)
	}
	for _, e := range ext {
		if !bytes.Equal(img[e.offset:e.offset+e.size], b[:e.size]) {
			return fmt.Errorf("the image's bytes differ from the verified copy")
		}
		b = b[e.size:]
	}
	return nil
}

// mapFile maps the file at p into memory, read-only: comparing pages in
// place instead of copying them.
func mapFile(p string) ([]byte, func(), error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if fi.Size() == 0 {
		return nil, func() {}, nil
	}
	b, err := syscall.Mmap(int(f.Fd()), 0, int(fi.Size()), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil, nil, fmt.Errorf("map %s: %w", p, err)
	}
	return b, func() { syscall.Munmap(b) }, nil
}
