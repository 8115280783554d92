package server

import (
	"context"
	"time"

	"github.com/bulwarkhq/bulwark/internal/store"
)

// pruneEvery is how often history is pruned; the first pass runs a minute
// after start so a restart loop never prunes in a tight loop.
const pruneEvery = time.Hour

// retention is the policy in force: the configured one or the default.
func (s *Server) retention() store.Retention {
	if s.cfg.Retention != nil {
		return *s.cfg.Retention
	}
	return store.DefaultRetention
}

// pruneLoop deletes history the retention policy no longer keeps.
func (s *Server) pruneLoop(ctx context.Context) {
	runEvery(ctx, time.Minute, pruneEvery, func(ctx context.Context) { s.prune(ctx) })
}

// runEvery calls fn after first and then every period until ctx ends.
func runEvery(ctx context.Context, first, period time.Duration, fn func(context.Context)) {
	t := time.NewTimer(first)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		fn(ctx)
		t.Reset(period)
	}
}

// prune runs one pruning pass and logs what it deleted.
func (s *Server) prune(ctx context.Context) store.Pruned {
	start := time.Now()
	n, err := s.st.Prune(ctx, s.retention(), s.now())
	if err != nil {
		s.log.Warn("prune history", "err", err)
		return n
	}
	var total int64
	for _, v := range n {
		total += v
	}
	if total > 0 {
		args := []any{"took", time.Since(start).Round(time.Millisecond)}
		for k, v := range n {
			args = append(args, k, v)
		}
		s.log.Info("pruned history", args...)
	}
	return n
}
