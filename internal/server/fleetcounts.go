package server

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/bulwarkhq/bulwark/internal/store"
	"github.com/bulwarkhq/bulwark/internal/wire"
)

// fleetRefresh is how often the fleet aggregates shown on /, at
// /api/v1/status and in /metrics are computed. They are computed here, off
// the request path, so that no request (above all no unauthenticated one)
// can make the server scan the state table.
const fleetRefresh = 15 * time.Second

// fleetCounts are the aggregates of the last refresh.
type fleetCounts struct {
	Computers map[string]int
	States    map[string]int
	Syncs     []store.SyncRun      // the latest run of each vendor
	LastOK    map[string]time.Time // when each vendor last synced successfully
	At        time.Time            // when they were computed; zero before the first
	Err       error                // of the last refresh

	runs []store.SyncRun // the newest sync runs, for LastOK
}

type fleetCache struct {
	mu  sync.Mutex
	cur fleetCounts
}

func (c *fleetCache) get() fleetCounts {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cur
}

// refreshFleet computes the aggregates once.
func (s *Server) refreshFleet(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	fc, err := s.computeFleet(ctx)
	s.fleet.mu.Lock()
	defer s.fleet.mu.Unlock()
	// The newest 200 runs may hold no success of a vendor whose syncs keep
	// failing: it keeps the time an earlier refresh found.
	fc.LastOK = lastSuccesses(s.fleet.cur.LastOK, fc.runs)
	fc.runs = nil
	if err != nil {
		s.log.Error("fleet counts", "err", err)
		s.fleet.cur.Err = err
		return
	}
	s.fleet.cur = fc
}

func (s *Server) computeFleet(ctx context.Context) (fleetCounts, error) {
	fc := fleetCounts{At: s.now().UTC(), States: map[string]int{}, Syncs: []store.SyncRun{}}
	var err error
	if fc.Computers, err = s.st.AgentCounts(ctx); err != nil {
		return fc, err
	}
	counts, err := s.st.StateCounts(ctx)
	if err != nil {
		return fc, err
	}
	for _, byState := range counts {
		for k, n := range byState {
			fc.States[k] += n
		}
	}
	runs, err := s.st.ListSyncs(ctx, 200)
	if err != nil {
		return fc, err
	}
	fc.runs = runs
	seen := map[string]bool{}
	for _, run := range runs {
		if !seen[run.Vendor] {
			seen[run.Vendor] = true
			fc.Syncs = append(fc.Syncs, run)
		}
	}
	return fc, nil
}

// fleetLoop refreshes the aggregates until ctx is done.
func (s *Server) fleetLoop(ctx context.Context) {
	t := time.NewTicker(fleetRefresh)
	defer t.Stop()
	for {
		s.refreshFleet(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// updateKeys caches, per vendor, the ids of the updates the server has
// indexed: a report may only carry states for those (F4: a flood of
// made-up keys is refused, and an agent's rows are bounded by the
// catalog). A vendor's entry is dropped whenever its index changes.
type updateKeys struct {
	mu       sync.Mutex
	byVendor map[string]map[string]string
}

func (k *updateKeys) forget(vendor string) {
	k.mu.Lock()
	delete(k.byVendor, vendor)
	k.mu.Unlock()
}

// checkKnownUpdates refuses a report that names an update the server does
// not know, naming the first such key.
func (s *Server) checkKnownUpdates(ctx context.Context, changes []wire.StateChange) error {
	s.known.mu.Lock()
	defer s.known.mu.Unlock()
	if s.known.byVendor == nil {
		s.known.byVendor = map[string]map[string]string{}
	}
	for i, c := range changes {
		vendor, id, _ := cutKey(c.Key)
		ids, ok := s.known.byVendor[vendor]
		if !ok {
			var err error
			if ids, err = s.st.UpdateHashes(ctx, vendor); err != nil {
				return err
			}
			if len(ids) == 0 {
				return errorf(http.StatusUnprocessableEntity, "changes[%d].key %q: no vendor %q on this server", i, c.Key, vendor)
			}
			// Only vendors with indexed updates are kept: the cache is
			// bounded by the index, whatever names reports make up.
			s.known.byVendor[vendor] = ids
		}
		if _, ok := ids[id]; !ok {
			return errorf(http.StatusUnprocessableEntity, "changes[%d].key %q: vendor %s has no update %s on this server", i, c.Key, vendor, id)
		}
	}
	return nil
}
