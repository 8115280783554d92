package server

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// seenFlushEvery is how often coalesced last-seen times are written.
const seenFlushEvery = time.Second

// lastSeen coalesces agents' last-seen times: a check-in records its time
// in memory and one transaction a second writes every agent seen since, so
// a storm of check-ins costs one write per second instead of one per
// check-in. A crash loses at most the last second of last-seen times.
type lastSeen struct {
	st     AgentStore
	log    *slog.Logger
	mu     sync.Mutex
	seen   map[string]time.Time
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func newLastSeen(st AgentStore, log *slog.Logger) *lastSeen {
	ctx, cancel := context.WithCancel(context.Background())
	l := &lastSeen{st: st, log: log, seen: map[string]time.Time{}, cancel: cancel}
	l.wg.Go(func() {
		runEvery(ctx, seenFlushEvery, seenFlushEvery, func(ctx context.Context) { l.flush(context.WithoutCancel(ctx)) })
	})
	return l
}

// touch records that agent id was seen at at.
func (l *lastSeen) touch(id string, at time.Time) {
	l.mu.Lock()
	if at.After(l.seen[id]) {
		l.seen[id] = at
	}
	l.mu.Unlock()
}

// flush writes what was recorded since the last flush.
func (l *lastSeen) flush(ctx context.Context) {
	l.mu.Lock()
	batch := l.seen
	if len(batch) == 0 {
		l.mu.Unlock()
		return
	}
	l.seen = map[string]time.Time{}
	l.mu.Unlock()
	if err := l.st.TouchAgents(ctx, batch); err != nil {
		l.log.Warn("write last-seen times", "agents", len(batch), "err", err)
	}
}

// Close stops the writer after a last flush.
func (l *lastSeen) Close() {
	l.cancel()
	l.wg.Wait()
	l.flush(context.Background())
}
