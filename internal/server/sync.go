package server

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/bulwarkhq/bulwark/internal/atomicfile"
	"github.com/bulwarkhq/bulwark/internal/catalog"
	"github.com/bulwarkhq/bulwark/internal/fetch"
	"github.com/bulwarkhq/bulwark/internal/pki"
	"github.com/bulwarkhq/bulwark/internal/store"
	"github.com/bulwarkhq/bulwark/internal/tuf"
	"github.com/bulwarkhq/bulwark/internal/version"
)

// syncLoop syncs every vendor repository at start, then every interval
// with jitter, and whenever asked. Hosted repositories are only re-indexed.
// It closes synced when the start sync has ended.
func (s *Server) syncLoop(ctx context.Context, synced chan<- struct{}) {
	interval, jitter := time.Hour, time.Duration(0)
	if u := s.cfg.Upstream; u != nil {
		if u.Interval > 0 {
			interval = u.Interval
		}
		jitter = u.Jitter
		if jitter == 0 {
			jitter = interval / 10
		}
	}
	trigger, vendor := "start", ""
	for {
		if _, err := s.SyncAll(ctx, vendor, trigger); err != nil && ctx.Err() == nil {
			s.log.Error("sync", "err", err)
		}
		if synced != nil {
			close(synced)
			synced = nil
		}
		wait := interval
		if jitter > 0 {
			wait += time.Duration(rand.Int64N(int64(jitter)))
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
			trigger, vendor = "schedule", ""
		case vendor = <-s.syncNow:
			t.Stop()
			trigger = "manual"
		}
	}
}

// SyncAll syncs one vendor repository, or all of them when vendor is "",
// and records each run.
func (s *Server) SyncAll(ctx context.Context, vendor, trigger string) ([]store.SyncRun, error) {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	var runs []store.SyncRun
	var errs []error
	for _, rp := range s.sortedRepos() {
		if vendor != "" && rp.name != vendor {
			continue
		}
		run, err := s.syncRepo(ctx, rp, trigger)
		if run != nil {
			runs = append(runs, *run)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", rp.name, err))
		}
	}
	if s.replica() && vendor == "" {
		run, err := s.replicateRun(ctx, trigger)
		if run != nil {
			runs = append(runs, *run)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("groups and approvals: %w", err))
		}
	}
	return runs, errors.Join(errs...)
}

// ReplicaRun is the vendor name sync history shows for a replica's copy of
// its upstream's groups and approvals.
const ReplicaRun = "(groups and approvals)"

func (s *Server) replicateRun(ctx context.Context, trigger string) (*store.SyncRun, error) {
	run := &store.SyncRun{Vendor: ReplicaRun, Trigger: trigger, StartedAt: s.now()}
	id, err := s.st.StartSync(ctx, run)
	if err != nil {
		return nil, err
	}
	run.ID = id
	changed, rerr := s.replicate(ctx)
	fin := s.now()
	run.FinishedAt, run.Changed, run.Status = &fin, changed, store.SyncOK
	if rerr != nil {
		run.Status, run.Error = store.SyncFailed, rerr.Error()
		s.log.Error("replicate groups and approvals", "err", rerr)
	}
	if s.metrics != nil {
		s.metrics.syncs.WithLabelValues(run.Status).Inc()
	}
	if err := s.st.FinishSync(context.WithoutCancel(ctx), run); err != nil {
		return run, err
	}
	return run, rerr
}

func (s *Server) syncRepo(ctx context.Context, rp *repo, trigger string) (*store.SyncRun, error) {
	run := &store.SyncRun{Vendor: rp.name, Trigger: trigger, StartedAt: s.now()}
	id, err := s.st.StartSync(ctx, run)
	if err != nil {
		return nil, err
	}
	run.ID = id
	log := s.log.With("vendor", rp.name, "sync", id)
	s.live.start(run)
	serr := s.doSync(ctx, rp, run)
	s.live.finish(id)
	fin := s.now()
	run.FinishedAt = &fin
	run.Status = store.SyncOK
	if serr != nil {
		run.Status, run.Error = store.SyncFailed, serr.Error()
		log.Error("sync failed", "err", serr)
	} else {
		log.Info("sync done", "changed", run.Changed, "updates_fetched", run.UpdatesFetched, "payloads_fetched", run.PayloadsFetched, "bytes", run.BytesFetched)
	}
	if s.metrics != nil {
		s.metrics.syncs.WithLabelValues(run.Status).Inc()
	}
	if err := s.st.FinishSync(context.WithoutCancel(ctx), run); err != nil {
		return run, err
	}
	return run, serr
}

func (s *Server) doSync(ctx context.Context, rp *repo, run *store.SyncRun) error {
	if rp.kind == "hosted" {
		// Its publisher changes it behind the server's back; a sync (or
		// the metadata cache's one-second look) is when the server notices.
		s.meta.purge(rp.dir)
	}
	if rp.kind == "mirror" && s.cfg.Upstream.Offline() {
		if err := s.loadImportedRoot(rp); err != nil {
			return err
		}
		s.meta.purge(rp.dir)
	} else if rp.kind == "mirror" {
		up := s.cfg.Upstream
		hc, err := s.upstreamClient()
		if err != nil {
			return err
		}
		fc := fetch.New(fetch.Options{HTTPClient: hc, UserAgent: "bulwark-server/" + version.String(), Logger: s.log})
		if err := s.pinVendorRoot(ctx, rp, fc); err != nil {
			return err
		}
		rp.mu.Lock()
		trusted := rp.root
		rp.mu.Unlock()
		res, err := tuf.Mirror(ctx, tuf.MirrorConfig{
			TrustedRoot:  trusted,
			MetadataURL:  up.URL + "/repos/" + rp.name + "/metadata",
			TargetsURL:   up.URL + "/repos/" + rp.name + "/targets",
			Dir:          rp.dir,
			Fetcher:      fc,
			Include:      s.includeFilter(),
			MetadataOnly: up.MetadataOnly,
			Now:          s.now,
			Report:       func(p tuf.MirrorProgress) { s.live.set(run.ID, p) },
		})
		s.meta.purge(rp.dir) // what it serves may have changed, even if the sync then failed
		if err != nil {
			return err
		}
		run.Changed, run.UpdatesFetched, run.PayloadsFetched, run.BytesFetched = res.Changed, res.UpdatesFetched, res.PayloadsFetched, res.BytesFetched
	}
	s.live.phase(run.ID, "index")
	n, err := s.indexRepo(ctx, rp)
	if err != nil {
		return fmt.Errorf("index: %w", err)
	}
	if rp.kind == "hosted" {
		run.Changed, run.UpdatesFetched = n > 0, n
	}
	if s.cfg.Content != nil && rp.upstreamTU == "" {
		s.live.phase(run.ID, "content")
		pushed, err := s.pushTargets(ctx, rp)
		if err != nil {
			return err
		}
		if pushed > 0 {
			s.log.Info("content store", "vendor", rp.name, "copied", pushed, "store", s.cfg.Content.String())
		}
	}
	return nil
}

// upstreamClient is an HTTPS client that trusts only the upstream's pinned
// CA.
func (s *Server) upstreamClient() (*http.Client, error) {
	tc, err := pki.PinnedClientConfig(s.cfg.Upstream.CAFingerprint)
	if err != nil {
		return nil, err
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: tc, TLSHandshakeTimeout: 15 * time.Second,
		ResponseHeaderTimeout: time.Minute, MaxIdleConnsPerHost: 8}}, nil
}

// pinVendorRoot fetches a vendor's first root from the upstream once and
// keeps it only if it has the configured fingerprint.
//
// It fetches without holding rp.mu: enrollments and check-ins read the
// root under it and must not wait for a slow upstream. Syncs run one at a
// time (syncMu), so no other pin runs meanwhile.
func (s *Server) pinVendorRoot(ctx context.Context, rp *repo, fc *fetch.Client) error {
	rp.mu.Lock()
	pinned := rp.root != nil
	rp.mu.Unlock()
	if pinned {
		return nil
	}
	var want string
	for _, v := range s.cfg.Upstream.Vendors {
		if v.Name == rp.name {
			want = normFingerprint(v.RootFingerprint)
		}
	}
	b, err := fc.Bytes(ctx, s.cfg.Upstream.URL+"/repos/"+rp.name+"/metadata/1.root.json", fetch.Limits{MaxBytes: 512 << 10, Timeout: time.Minute})
	if err != nil {
		return fmt.Errorf("fetch vendor root: %w", err)
	}
	if got := tuf.RootFingerprint(b); got != want {
		return fmt.Errorf("vendor root from the upstream has fingerprint %s, configured %s: refusing it", got, want)
	}
	dir := filepath.Join(s.cfg.DataDir, rootsDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, rp.name+".json"), b, 0o644); err != nil {
		return err
	}
	rp.mu.Lock()
	rp.root, rp.rootSum = b, want
	rp.mu.Unlock()
	return nil
}

// loadImportedRoot reads the vendor root that `bulwark media import` pinned
// on an offline server, and keeps it only if it has the configured
// fingerprint.
func (s *Server) loadImportedRoot(rp *repo) error {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	if rp.root != nil {
		return nil
	}
	b, err := os.ReadFile(filepath.Join(s.cfg.DataDir, rootsDir, rp.name+".json"))
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("nothing imported yet: this server is offline; bring the vendor's updates with `bulwark media import`")
	}
	if err != nil {
		return err
	}
	for _, v := range s.cfg.Upstream.Vendors {
		if v.Name == rp.name && tuf.RootFingerprint(b) != normFingerprint(v.RootFingerprint) {
			return fmt.Errorf("the imported root in %s has fingerprint %s, configured %s: refusing it", rootsDir, tuf.RootFingerprint(b), v.RootFingerprint)
		}
	}
	rp.root, rp.rootSum = b, tuf.RootFingerprint(b)
	return nil
}

// includeFilter is the upstream's product, classification and severity
// filter; nil includes everything.
func (s *Server) includeFilter() func(*catalog.Update) bool {
	up := s.cfg.Upstream
	if len(up.Products) == 0 && len(up.Classifications) == 0 && len(up.Severities) == 0 {
		return nil
	}
	return func(u *catalog.Update) bool {
		return (len(up.Products) == 0 || slices.Contains(up.Products, u.Product)) &&
			(len(up.Classifications) == 0 || slices.Contains(up.Classifications, string(u.Classification))) &&
			(len(up.Severities) == 0 || slices.Contains(up.Severities, string(u.Severity)))
	}
}
