package media

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// VolumeID is the ISO 9660 volume identifier of Bulwark media.
const VolumeID = "BULWARK_MEDIA"

// ErrNoXorriso means the xorriso program (Debian package xorriso) is missing.
var ErrNoXorriso = errors.New("xorriso not found: install the Debian package xorriso")

func xorriso() (string, error) {
	p, err := exec.LookPath("xorriso")
	if err != nil {
		return "", ErrNoXorriso
	}
	return p, nil
}

// WriteISO writes the media directory dir as an ISO 9660 image with Rock
// Ridge and Joliet to out, with xorriso. Every date in the image (volume
// dates, file dates, the volume uuid) is date, ownership is root and
// directory order is sorted, so the same directory gives the same bytes.
// CreateOptions.ISO writes the image while the media are made, with one
// flush for both.
func WriteISO(ctx context.Context, dir, out string, date time.Time) error {
	tmp := out + ".partial"
	if err := xorrisoImage(ctx, dir, "", tmp, date); err != nil {
		return err
	}
	if err := syncFile(tmp); err != nil {
		os.Remove(tmp)
		return err
	}
	return renameSynced(tmp, out)
}

// xorrisoImage runs xorriso to write the image of dir to tmp (replaced if
// it exists); on failure nothing is left at tmp. pathspecs, if not "", is
// a file of more pathspecs (IMAGE_PATH=SOURCE_FILE, one a line) whose
// files xorriso reads from their sources (see graft.go).
func xorrisoImage(ctx context.Context, dir, pathspecs, tmp string, date time.Time) error {
	x, err := xorriso()
	if err != nil {
		return err
	}
	os.Remove(tmp)
	stamp := date.UTC().Format("2006010215040500")
	// Every file's and directory's dates in the image are date, whatever
	// the dates of the files it is made from.
	args := []string{"-volume_date", "all_file_dates", stamp, "-as", "mkisofs",
		"-o", tmp, "-V", VolumeID, "-r", "-J", "-joliet-long",
		"--modification-date=" + stamp, "-iso-level", "3", "-graft-points", "/=" + pathspecEscape(dir)}
	if pathspecs != "" {
		args = append(args, "-path-list", pathspecs)
	}
	cmd := exec.CommandContext(ctx, x, args...)
	// SOURCE_DATE_EPOCH makes xorriso use date for every file and volume
	// timestamp it would otherwise take from the clock.
	cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH="+strconv.FormatInt(date.Unix(), 10))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	// The file is made here and kept open, so that its pages can be sent
	// to disk while xorriso writes them (xorriso truncates it and writes
	// into the same file).
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("xorriso: %w", err)
	}
	defer f.Close()
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		writebackWhileWritten(f, 50*time.Millisecond, stop)
	}()
	err = cmd.Run()
	close(stop)
	<-done
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("xorriso: %w: %s", err, lastLines(stderr.String(), 5))
	}
	return nil
}

// pathspecEscape escapes the characters a pathspec gives a meaning to.
func pathspecEscape(p string) string {
	return strings.NewReplacer(`\`, `\\`, "=", `\=`).Replace(p)
}

func syncFile(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	err = f.Sync()
	f.Close()
	return err
}

// renameSynced renames tmp to out and flushes their directory.
func renameSynced(tmp, out string) error {
	if err := os.Rename(tmp, out); err != nil {
		os.Remove(tmp)
		return err
	}
	if d, err := os.Open(filepath.Dir(out)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// IsISO reports whether the file at p is an ISO 9660 image.
func IsISO(p string) bool {
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	b := make([]byte, 5)
	if _, err := f.ReadAt(b, 32769); err != nil {
		return false
	}
	return string(b) == "CD001"
}

// Open returns a directory holding the media at p: p itself when it is a
// directory, or a temporary copy extracted from an ISO 9660 image with
// xorriso (no mount needed) or from a tar archive (plain or compressed)
// with tar. close removes the copy.
func Open(ctx context.Context, p string) (dir string, close func(), err error) {
	return OpenPath(ctx, p)
}

// OpenPath is Open for a path that may go on inside an image or archive:
// "disc.iso/lockdown" is the directory lockdown of the image disc.iso (only
// that part is extracted), "media.tar/lockdown" the same inside a tar
// archive. An archive holding one top directory (tar -cf media.tar media)
// is read from inside it. Extracted copies hold only directories and
// regular files: an image or archive with a link or a special file is
// refused, naming it, so reading the copy cannot lead outside it.
func OpenPath(ctx context.Context, p string) (dir string, close func(), err error) {
	container, inner := filepath.Clean(p), ""
	for {
		if _, err := os.Lstat(container); err == nil {
			break
		}
		parent := filepath.Dir(container)
		if parent == container || container == "." {
			return "", nil, fmt.Errorf("media: %w", &os.PathError{Op: "stat", Path: p, Err: os.ErrNotExist})
		}
		inner = path.Join(filepath.Base(container), inner)
		container = parent
	}
	fi, err := os.Stat(container)
	if err != nil {
		return "", nil, fmt.Errorf("media: %w", err)
	}
	if fi.IsDir() {
		if inner != "" {
			return "", nil, fmt.Errorf("media: %w", &os.PathError{Op: "stat", Path: p, Err: os.ErrNotExist})
		}
		return p, func() {}, nil
	}
	tmp, err := os.MkdirTemp("", "bulwark-media-")
	if err != nil {
		return "", nil, err
	}
	cleanup := func() { os.RemoveAll(tmp) }
	dst := filepath.Join(tmp, "media")
	top := dst
	switch {
	case IsISO(container):
		err = extractISO(ctx, container, inner, dst)
		top = filepath.Join(dst, filepath.FromSlash(inner))
	case isTar(container):
		if err = extractTar(ctx, container, dst); err == nil {
			top = filepath.Join(singleDir(dst), filepath.FromSlash(inner))
		}
	default:
		err = fmt.Errorf("media %s: neither a directory, an ISO 9660 image nor a tar archive; give the media directory, its .iso image or a tar archive of it", container)
	}
	if err == nil {
		err = plainTree(dst, container)
	}
	if err == nil {
		if fi, serr := os.Stat(top); serr != nil || !fi.IsDir() {
			err = fmt.Errorf("media %s: %s is not a directory in it", container, inner)
		}
	}
	if err != nil {
		cleanup()
		return "", nil, err
	}
	return top, cleanup, nil
}

// extractISO extracts the directory inner ("" for all) of an ISO image to
// dst with xorriso.
func extractISO(ctx context.Context, iso, inner, dst string) error {
	x, err := xorriso()
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, x, "-osirrox", "on", "-indev", iso, "-extract", "/"+inner, filepath.Join(dst, filepath.FromSlash(inner)))
	var stderr bytes.Buffer
	cmd.Stderr, cmd.Stdout = &stderr, io.Discard
	if err := cmd.Run(); err != nil {
		if inner != "" && strings.Contains(stderr.String(), "Cannot determine attributes of (ISO) source file") {
			return fmt.Errorf("media %s: no %s in the image", iso, inner)
		}
		return fmt.Errorf("read %s with xorriso: %w: %s", iso, err, lastLines(stderr.String(), 5))
	}
	return nil
}

// isTar reports whether the file at p is a tar archive, plain or
// compressed with a format tar recognises by itself.
func isTar(p string) bool {
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	b := make([]byte, 512)
	n, _ := io.ReadFull(f, b)
	b = b[:n]
	switch {
	case n == 512 && string(b[257:262]) == "ustar":
		return true
	case bytes.HasPrefix(b, []byte{0x1f, 0x8b}), // gzip
		bytes.HasPrefix(b, []byte{0x28, 0xb5, 0x2f, 0xfd}), // zstd
		bytes.HasPrefix(b, []byte("\xfd7zXZ\x00")),         // xz
		bytes.HasPrefix(b, []byte("BZh")):                  // bzip2
		return true
	}
	return false
}

// extractTar extracts a tar archive to dst with tar, as the invoking user,
// without the archive's owners or permissions; GNU tar refuses members with
// ".." and strips leading slashes.
func extractTar(ctx context.Context, archive, dst string) error {
	if err := os.MkdirAll(dst, 0o700); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "tar", "-x", "-f", archive, "-C", dst, "--no-same-owner", "--no-same-permissions", "--no-overwrite-dir")
	var stderr bytes.Buffer
	cmd.Stderr, cmd.Stdout = &stderr, io.Discard
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("read %s with tar: %w: %s", archive, err, lastLines(stderr.String(), 5))
	}
	return nil
}

// singleDir is the one directory dir holds when it holds nothing else (an
// archive of the media directory itself), else dir.
func singleDir(dir string) string {
	ents, err := os.ReadDir(dir)
	if err == nil && len(ents) == 1 && ents[0].IsDir() {
		return filepath.Join(dir, ents[0].Name())
	}
	return dir
}

// plainTree refuses a tree extracted from container that holds anything
// but directories and regular files.
func plainTree(dir, container string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && !d.Type().IsRegular() {
			rel, _ := filepath.Rel(dir, p)
			return fmt.Errorf("media %s: %s is a %s, not a regular file: media hold only directories and regular files", container, filepath.ToSlash(rel), d.Type())
		}
		return nil
	})
}

func lastLines(s string, n int) string {
	lines := bytes.Split(bytes.TrimSpace([]byte(s)), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("; ")))
}
