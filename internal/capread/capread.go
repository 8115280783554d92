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
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s: over the %d byte limit: %w", path, max, ErrTooLarge)
	}
	return b, nil
}
