// Package content stores the files a server serves by name, repository
// targets (the payloads agents download), in a directory or in
// S3-compatible object storage that several server replicas share.
//
// A key is a slash-separated relative name ("example/targets/updates/…").
// Put is atomic from a reader's view: until it returns, readers see the
// previous object or none, never part of the new one.
package content

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
	"time"
)

// Info describes one stored object.
type Info struct {
	Key     string
	Size    int64
	ModTime time.Time
}

// Object is an open object: http.ServeContent reads ranges of it by
// seeking.
type Object interface {
	io.ReadSeekCloser
	Info() Info
}

// Store is a content store.
type Store interface {
	// Open opens key for reading; a missing key is fs.ErrNotExist.
	Open(ctx context.Context, key string) (Object, error)
	// Put stores size bytes from r under key, replacing what was there,
	// atomically. A reader that fails or ends short leaves the key as it
	// was.
	Put(ctx context.Context, key string, r io.Reader, size int64) error
	// List lists the objects whose keys start with prefix, sorted.
	List(ctx context.Context, prefix string) ([]Info, error)
	// Delete removes key; a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// String names the store for logs, without secrets.
	String() string
}

// CheckKey refuses keys that are not clean relative slash-separated names:
// empty, absolute, with empty, "." or ".." components, hidden components
// (temporary files), backslashes, NUL or control characters.
func CheckKey(key string) error {
	if key == "" || len(key) > 1024 || path.Clean(key) != key || strings.HasPrefix(key, "/") {
		return fmt.Errorf("content key %q: want a clean relative name such as repo/targets/file: %w", key, fs.ErrInvalid)
	}
	for _, c := range strings.Split(key, "/") {
		if c == "." || c == ".." || strings.HasPrefix(c, ".") || strings.ContainsFunc(c, func(r rune) bool { return r < 0x20 || r == 0x7f || r == '\\' }) {
			return fmt.Errorf("content key %q: component %q is not allowed (no dot files, .., backslashes or control characters): %w", key, c, fs.ErrInvalid)
		}
	}
	return nil
}
