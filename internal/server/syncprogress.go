package server

import (
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/bulwarkhq/bulwark/internal/store"
	"github.com/bulwarkhq/bulwark/internal/tuf"
)

// SyncProgress is a sync this server is running and how far it has come:
// GET /api/v1/sync/progress, which `bulwark admin sync run --follow`
// draws. The counters live in this process only (the sync history in the
// store has each run once it finished); a replica shows its own syncs.
type SyncProgress struct {
	ID        int64     `json:"id"` // the run in the sync history
	Vendor    string    `json:"vendor"`
	StartedAt time.Time `json:"started_at"`
	// Phase is "metadata", "targets" or "switch" while a mirror syncs
	// (tuf.MirrorProgress), then "index" while the server reads the new
	// updates into its index, and "content" while it copies targets to
	// its content store.
	tuf.MirrorProgress
}

// liveSyncs are the syncs running in this process, by run id.
type liveSyncs struct {
	mu sync.Mutex
	m  map[int64]*SyncProgress
}

func (l *liveSyncs) start(run *store.SyncRun) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m = map[int64]*SyncProgress{}
	}
	l.m[run.ID] = &SyncProgress{ID: run.ID, Vendor: run.Vendor, StartedAt: run.StartedAt, MirrorProgress: tuf.MirrorProgress{Phase: "metadata"}}
}

// set records the progress of run id (a tuf.MirrorConfig.Report).
func (l *liveSyncs) set(id int64, p tuf.MirrorProgress) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if s := l.m[id]; s != nil {
		s.MirrorProgress = p
	}
}

func (l *liveSyncs) phase(id int64, phase string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if s := l.m[id]; s != nil {
		s.Phase = phase
	}
}

func (l *liveSyncs) finish(id int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.m, id)
}

// list returns the running syncs, oldest first.
func (l *liveSyncs) list() []SyncProgress {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]SyncProgress, 0, len(l.m))
	for _, s := range l.m {
		out = append(out, *s)
	}
	slices.SortFunc(out, func(a, b SyncProgress) int { return int(a.ID - b.ID) })
	return out
}

func (s *Server) apiSyncProgress(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]any{"syncs": s.live.list()})
	return nil
}
