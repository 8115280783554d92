// Package atomicfile writes files so that a reader, or the next start after a
// crash or power loss, sees either the old content or the new content, never
// a mix: temp file in the same directory → write → fsync → rename → fsync of
// the directory. It must not be used for files that are appended to.
package atomicfile

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// tempPrefix marks temporary files so that RemoveStale can find the ones a
// crash left behind.
const tempPrefix = ".tmp-"

// durability is how much of a write is flushed before it returns.
type durability int

const (
	syncAll  durability = iota // fsync the file and its directory
	syncFile                   // fsync the file; the caller fsyncs the directory
	syncNone                   // fsync nothing; the caller flushes the filesystem
)

// WriteFile atomically replaces path with data, created with perm.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	return write(path, perm, bytesOf(data), syncAll)
}

// Write atomically replaces path with what fill writes, created with perm.
// If fill fails, path is left untouched and the temporary file is removed.
func Write(path string, perm os.FileMode, fill func(w io.Writer) error) error {
	return write(path, perm, fill, syncAll)
}

// WriteFileNoDirSync is WriteFile without the final fsync of the directory,
// for writing many files into one directory: the caller must call SyncDir
// once after the last of them, before anything that refers to them is
// written.
func WriteFileNoDirSync(path string, data []byte, perm os.FileMode) error {
	return write(path, perm, bytesOf(data), syncFile)
}

// WriteFileUnsynced writes through a temporary file and a rename, like
// WriteFile, but fsyncs nothing: for writing many files at once, followed by
// one SyncFS before anything that refers to them is written.
func WriteFileUnsynced(path string, data []byte, perm os.FileMode) error {
	return write(path, perm, bytesOf(data), syncNone)
}

// WriteUnsynced is Write without any fsync; see WriteFileUnsynced.
func WriteUnsynced(path string, perm os.FileMode, fill func(w io.Writer) error) error {
	return write(path, perm, fill, syncNone)
}

func bytesOf(data []byte) func(io.Writer) error {
	return func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	}
}

func write(path string, perm os.FileMode, fill func(w io.Writer) error, d durability) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, tempPrefix+base+"-*")
	if err != nil {
		return fmt.Errorf("atomic write %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(perm); err != nil {
		return fmt.Errorf("atomic write %s: %w", path, err)
	}
	if err := fill(f); err != nil {
		return fmt.Errorf("atomic write %s: %w", path, err)
	}
	if d != syncNone {
		if err := f.Sync(); err != nil {
			return fmt.Errorf("atomic write %s: sync: %w", path, err)
		}
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("atomic write %s: close: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("atomic write %s: %w", path, err)
	}
	if d != syncAll {
		return nil
	}
	return SyncDir(dir)
}

// SyncDir fsyncs a directory so that renames and creations in it survive a
// power loss.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	return nil
}

// SyncFS flushes every file and directory of the filesystem that holds dir:
// one call after many WriteFileUnsynced instead of an fsync each.
func SyncFS(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync filesystem: %w", err)
	}
	defer d.Close()
	if err := unix.Syncfs(int(d.Fd())); err != nil {
		return fmt.Errorf("sync filesystem of %s: %w", dir, err)
	}
	return nil
}

// RemoveStale deletes temporary files that an interrupted Write left in dir.
// Call it at start-up, before anything writes to dir.
func RemoveStale(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("remove stale temp files: %w", err)
	}
	for _, e := range entries {
		if !e.IsDir() && strings.HasPrefix(e.Name(), tempPrefix) {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("remove stale temp file: %w", err)
			}
		}
	}
	return nil
}
