// Package capread reads whole files that must not exceed a size: metadata,
// records and configuration that the caller will hold in memory. It must not
// be used for payloads, which are streamed.
package capread

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// ErrTooLarge is wrapped when a file is larger than allowed.
var ErrTooLarge = errors.New("file too large")

// File returns the content of path, or an error wrapping ErrTooLarge that
// names the file and the limit when it has more than max bytes. It never
// reads more than max+1 bytes, whatever the file's size.
func File(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readCapped(f, path, max)
}

func readCapped(f *os.File, path string, max int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s: over the %d byte limit: %w", path, max, ErrTooLarge)
	}
	return b, nil
}

// ErrReadableByOthers is wrapped when a secret file's mode lets other users
// read it.
var ErrReadableByOthers = errors.New("readable by other users")

// CheckPrivate refuses a secret file (key, token, token-bearing config)
// whose mode lets the group or other users read or write it: the file may
// already have leaked, and it must not be used as if it had not.
func CheckPrivate(path string, fi os.FileInfo) error {
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("%s: mode %04o: %w; run chmod 600 %s (and replace the secret if others may have read it)", path, perm, ErrReadableByOthers, path)
	}
	return nil
}

// Secret is File for a secret: it also refuses a file other users can read
// (CheckPrivate), checked on the open file.
func Secret(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if err := CheckPrivate(path, fi); err != nil {
		return nil, err
	}
	return readCapped(f, path, max)
}
