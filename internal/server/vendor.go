package server

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/bulwarkhq/bulwark/internal/approval"
	"github.com/bulwarkhq/bulwark/internal/catalog"
	"github.com/bulwarkhq/bulwark/internal/store"
	"github.com/bulwarkhq/bulwark/internal/tuf"
)

// withClient runs fn with a verifying TUF client over the local copy of a
// vendor repository (file:// URLs): a tampered local file is refused exactly
// as a tampered download would be.
func (s *Server) withClient(ctx context.Context, rp *repo, fn func(*tuf.Client) error) error {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	if rp.root == nil {
		return &httpError{code: http.StatusConflict, msg: "vendor repository " + rp.name + " has not been synced yet", err: errNotSynced}
	}
	dir, err := filepath.Abs(rp.dir)
	if err != nil {
		return err
	}
	c, err := tuf.NewClient(tuf.ClientConfig{
		TrustedRoot: rp.root,
		MetadataURL: "file://" + filepath.Join(dir, tuf.MetadataDir),
		TargetsURL:  "file://" + filepath.Join(dir, tuf.TargetsDir),
		CacheDir:    filepath.Join(s.cfg.DataDir, cacheDir, rp.name),
		Now:         s.now,
	})
	if err != nil {
		return err
	}
	if err := c.Refresh(ctx); err != nil {
		return fmt.Errorf("verify vendor repository %s: %w", rp.name, err)
	}
	return fn(c)
}

// updateTargets reads one update's targets (update.json and its payloads)
// from the vendor's verified metadata, as an approval carries them.
func (s *Server) updateTargets(ctx context.Context, rp *repo, id string) ([]approval.Target, *catalog.Update, error) {
	var ts []approval.Target
	var u *catalog.Update
	err := s.withClient(ctx, rp, func(c *tuf.Client) error {
		info, err := c.Update(ctx, id)
		if errors.Is(err, tuf.ErrUnknownUpdate) {
			return &httpError{code: http.StatusNotFound, msg: fmt.Sprintf("vendor repository %s has no update %q", rp.name, id), err: err}
		}
		if err != nil {
			return err
		}
		u = info.Update
		ts = append(ts, approval.Target{Path: tuf.UpdatePath(id), Length: info.Target.Length, SHA256: hex.EncodeToString(info.Target.Hashes["sha256"])})
		for _, p := range info.Update.Payloads {
			tf, err := c.Payload(ctx, info, p.File)
			if err != nil {
				return err
			}
			ts = append(ts, approval.Target{Path: tuf.PayloadPath(id, p.File), Length: tf.Length, SHA256: hex.EncodeToString(tf.Hashes["sha256"])})
		}
		return nil
	})
	return ts, u, err
}

// indexRepo brings the update index up to date with one vendor repository:
// every updates/<id>/<sha256>.update.json file whose hash the index does not
// already hold is looked up through the verifying client. Files that do not
// verify (an old revision, a stray file) are skipped.
func (s *Server) indexRepo(ctx context.Context, rp *repo) (int, error) {
	known, err := s.st.UpdateHashes(ctx, rp.name)
	if err != nil {
		return 0, err
	}
	base := filepath.Join(rp.dir, tuf.TargetsDir, "updates")
	entries, err := os.ReadDir(base)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	} else if err != nil {
		return 0, err
	}
	var todo []string
	for _, e := range entries {
		id := e.Name()
		if !e.IsDir() || strings.HasPrefix(id, ".") {
			continue
		}
		files, err := os.ReadDir(filepath.Join(base, id))
		if err != nil {
			return 0, err
		}
		have := false
		for _, f := range files {
			if h, ok := strings.CutSuffix(f.Name(), ".update.json"); ok && h == known[id] {
				have = true
				break
			}
		}
		if !have {
			todo = append(todo, id)
		}
	}
	if len(todo) == 0 {
		return 0, nil
	}
	var batch []store.Update
	err = s.withClient(ctx, rp, func(c *tuf.Client) error {
		for _, id := range todo {
			info, err := c.Update(ctx, id)
			if err != nil {
				if !errors.Is(err, tuf.ErrUnknownUpdate) {
					s.log.Warn("index update", "vendor", rp.name, "update", id, "err", err)
				}
				continue
			}
			u := info.Update
			batch = append(batch, store.Update{Vendor: rp.name, ID: u.ID, Title: u.Title, Product: u.Product,
				Classification: string(u.Classification), Severity: string(u.Severity), Released: u.Released, CVEs: u.CVEs,
				SHA256: hex.EncodeToString(info.Target.Hashes["sha256"]), IndexedAt: s.now()})
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	if err := s.st.UpsertUpdates(ctx, batch); err != nil {
		return 0, err
	}
	s.known.forget(rp.name)
	return len(batch), nil
}
