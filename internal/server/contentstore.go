package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/bulwarkhq/bulwark/internal/content"
	"github.com/bulwarkhq/bulwark/internal/fetch"
	"github.com/bulwarkhq/bulwark/internal/tuf"
)

// With Config.Content set (S3-compatible object storage, or a directory
// apart from the data directory, e.g. on a network file system), the targets of
// every vendor repository (update.json files and payloads, the bytes agents
// download) are copied there after each sync, import or re-index, and
// served from there to agents, so that replicas need not hold the payloads
// on their disks or share one file system for them. Metadata and the site
// repository stay in the data directory. The order keeps readers whole:
// the local copy (written atomically by the sync) is complete first, each
// object appears whole when its PUT completes, and an object not copied
// yet is served from the local copy, so no request ever gets part of an
// object. A copy interrupted by a crash is finished by the next sync (every
// start syncs).

// contentKey is the store key of a repository target.
func contentKey(repo, p string) string { return repo + "/" + tuf.TargetsDir + "/" + p }

// pushTargets copies the targets of rp that the content store lacks (or
// holds with another size) into it. A file named after its SHA-256 (every
// target in a consistent-snapshot repository) is copied only if its bytes
// have that hash.
func (s *Server) pushTargets(ctx context.Context, rp *repo) (int, error) {
	prefix := contentKey(rp.name, "")
	have, err := s.cfg.Content.List(ctx, prefix)
	if err != nil {
		return 0, err
	}
	sizes := make(map[string]int64, len(have))
	for _, o := range have {
		sizes[o.Key] = o.Size
	}
	dir := filepath.Join(rp.dir, tuf.TargetsDir)
	n := 0
	var failed []error
	err = filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if p == dir && errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		name := e.Name()
		if p != dir && strings.HasPrefix(name, ".") {
			if e.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if !e.Type().IsRegular() || strings.HasSuffix(name, fetch.PartialSuffix) || strings.HasSuffix(name, fetch.MetaSuffix) {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		fi, err := e.Info()
		if err != nil {
			return nil // removed meanwhile
		}
		key := prefix + filepath.ToSlash(rel)
		if size, ok := sizes[key]; ok && size == fi.Size() {
			return nil
		}
		if err := pushFile(ctx, s.cfg.Content, key, p, fi.Size()); err != nil {
			if ctx.Err() != nil {
				return err
			}
			failed = append(failed, err) // the others are still copied
			return nil
		}
		n++
		return nil
	})
	if err = errors.Join(append(failed, err)...); err != nil {
		return n, fmt.Errorf("content store %s: %w", s.cfg.Content, err)
	}
	return n, nil
}

// pushFile uploads one file, after checking the hash its name carries.
func pushFile(ctx context.Context, st content.Store, key, p string, size int64) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	if want, _, ok := strings.Cut(filepath.Base(p), "."); ok && len(want) == 64 {
		if _, err := hex.DecodeString(want); err == nil {
			h := sha256.New()
			if _, err := io.Copy(h, f); err != nil {
				return err
			}
			if got := hex.EncodeToString(h.Sum(nil)); got != want {
				return fmt.Errorf("%s: SHA-256 %s, its name says %s: not copied (a damaged local copy; the next sync fetches it again)", p, got, want)
			}
			if _, err := f.Seek(0, io.SeekStart); err != nil {
				return err
			}
		}
	}
	return st.Put(ctx, key, f, size)
}

// serveContent serves a repository target from the content store; false
// when it is not there (not copied yet, or the store is unreachable), so
// that the caller serves the local copy.
func (s *Server) serveContent(w http.ResponseWriter, r *http.Request, rp *repo, p string) bool {
	o, err := s.cfg.Content.Open(r.Context(), contentKey(rp.name, p))
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			s.log.Warn("content store", "store", s.cfg.Content.String(), "err", err)
		}
		return false
	}
	defer o.Close()
	info := o.Info()
	targetHeaders(w.Header(), path.Base(p), info.Size, info.ModTime)
	http.ServeContent(w, r, "", info.ModTime, o)
	return true
}
