package content

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/bulwarkhq/bulwark/internal/atomicfile"
)

// Dir is a content store in a directory (shared by replicas on one machine
// or a network file system). Keys are opened through os.Root, so no name or
// symbolic link reaches outside it; Put writes a temporary file and renames
// it (internal/atomicfile).
type Dir struct {
	dir  string
	root *os.Root
}

// OpenDir opens (creating) a directory store.
func OpenDir(dir string) (*Dir, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("content store: %w", err)
	}
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("content store: %w", err)
	}
	return &Dir{dir: dir, root: r}, nil
}

// Close releases the directory.
func (d *Dir) Close() error { return d.root.Close() }

func (d *Dir) String() string { return d.dir }

type dirObject struct {
	*os.File
	info Info
}

func (o *dirObject) Info() Info { return o.info }

// Open implements Store.
func (d *Dir) Open(_ context.Context, key string) (Object, error) {
	if err := CheckKey(key); err != nil {
		return nil, err
	}
	f, err := d.root.Open(key)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("content %s: not a regular file: %w", key, fs.ErrNotExist)
	}
	return &dirObject{File: f, info: Info{Key: key, Size: fi.Size(), ModTime: fi.ModTime()}}, nil
}

// Put implements Store.
func (d *Dir) Put(_ context.Context, key string, r io.Reader, size int64) error {
	if err := CheckKey(key); err != nil {
		return err
	}
	if err := d.root.MkdirAll(filepath.Dir(filepath.FromSlash(key)), 0o755); err != nil {
		return fmt.Errorf("content %s: %w", key, err)
	}
	// The parent is inside the root (checked by MkdirAll through it); no
	// component of key is a symbolic link the root let through.
	err := atomicfile.Write(filepath.Join(d.dir, filepath.FromSlash(key)), 0o644, func(w io.Writer) error {
		n, err := io.Copy(w, io.LimitReader(r, size+1))
		if err != nil {
			return err
		}
		if n != size {
			return fmt.Errorf("%d bytes, want %d", n, size)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("content %s: %w", key, err)
	}
	return nil
}

// List implements Store.
func (d *Dir) List(_ context.Context, prefix string) ([]Info, error) {
	var out []Info
	err := fs.WalkDir(d.root.FS(), ".", func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if p == "." && errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if strings.HasPrefix(e.Name(), ".") && p != "." {
			if e.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if !e.Type().IsRegular() || !strings.HasPrefix(p, prefix) {
			return nil
		}
		fi, err := e.Info()
		if err != nil {
			return nil // removed meanwhile
		}
		out = append(out, Info{Key: p, Size: fi.Size(), ModTime: fi.ModTime()})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("content store %s: list: %w", d.dir, err)
	}
	slices.SortFunc(out, func(a, b Info) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}

// Delete implements Store.
func (d *Dir) Delete(_ context.Context, key string) error {
	if err := CheckKey(key); err != nil {
		return err
	}
	if err := d.root.Remove(key); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("content %s: %w", key, err)
	}
	return nil
}
