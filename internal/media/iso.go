package media

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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
func WriteISO(ctx context.Context, dir, out string, date time.Time) error {
	x, err := xorriso()
	if err != nil {
		return err
	}
	tmp := out + ".partial"
	os.Remove(tmp)
	stamp := date.UTC().Format("2006010215040500")
	cmd := exec.CommandContext(ctx, x, "-as", "mkisofs",
		"-o", tmp, "-V", VolumeID, "-r", "-J", "-joliet-long",
		"--modification-date="+stamp, "-iso-level", "3",
		dir)
	// SOURCE_DATE_EPOCH makes xorriso use date for every file and volume
	// timestamp it would otherwise take from the clock.
	cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH="+strconv.FormatInt(date.Unix(), 10))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("xorriso: %w: %s", err, lastLines(stderr.String(), 5))
	}
	f, err := os.Open(tmp)
	if err != nil {
		return err
	}
	err = f.Sync()
	f.Close()
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, out); err != nil {
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
// directory, or a temporary copy extracted from an ISO image with xorriso
// (no mount needed). close removes the copy.
func Open(ctx context.Context, p string) (dir string, close func(), err error) {
	fi, err := os.Stat(p)
	if err != nil {
		return "", nil, fmt.Errorf("media: %w", err)
	}
	if fi.IsDir() {
		return p, func() {}, nil
	}
	if !IsISO(p) {
		return "", nil, fmt.Errorf("media %s: neither a directory nor an ISO 9660 image; give the media directory or the .iso file", p)
	}
	x, err := xorriso()
	if err != nil {
		return "", nil, err
	}
	tmp, err := os.MkdirTemp("", "bulwark-media-")
	if err != nil {
		return "", nil, err
	}
	dst := filepath.Join(tmp, "media")
	cmd := exec.CommandContext(ctx, x, "-osirrox", "on", "-indev", p, "-extract", "/", dst)
	var stderr bytes.Buffer
	cmd.Stderr, cmd.Stdout = &stderr, io.Discard
	if err := cmd.Run(); err != nil {
		os.RemoveAll(tmp)
		return "", nil, fmt.Errorf("read %s with xorriso: %w: %s", p, err, lastLines(stderr.String(), 5))
	}
	return dst, func() { os.RemoveAll(tmp) }, nil
}

func lastLines(s string, n int) string {
	lines := bytes.Split(bytes.TrimSpace([]byte(s)), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("; ")))
}
