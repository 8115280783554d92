package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/bulwarkhq/bulwark/internal/atomicfile"
)

// stateFormat is the version of state.json; Open refuses another.
const stateFormat = 1

// UpdateRecord is what the agent knows about one update on this machine.
type UpdateRecord struct {
	Key      string    `json:"key"` // vendor/id
	Title    string    `json:"title,omitempty"`
	Severity string    `json:"severity,omitempty"`
	State    State     `json:"state"`
	Reason   string    `json:"reason,omitempty"`
	Revision int       `json:"revision,omitempty"`
	Changed  time.Time `json:"changed"`
}

// agentState is state.json: small, rewritten atomically after each change.
type agentState struct {
	Format  int                      `json:"format"`
	Updates map[string]*UpdateRecord `json:"updates"`
	// PendingBootID is the boot id when an installed update started waiting
	// for a reboot; a different boot id at start means the reboot happened.
	PendingBootID string `json:"pending_boot_id,omitempty"`
	// NextSeq numbers report events; DeliveredSeq is the last one the
	// server acknowledged.
	NextSeq      int64 `json:"next_seq"`
	DeliveredSeq int64 `json:"delivered_seq"`
}

// Event is one state change, queued on disk until the server acknowledges
// it: reports are delivered at least once and deduplicated by sequence.
type Event struct {
	Seq      int64     `json:"seq"`
	Key      string    `json:"key"`
	State    State     `json:"state"`
	Reason   string    `json:"reason,omitempty"`
	Revision int       `json:"revision,omitempty"`
	Time     time.Time `json:"time"`
}

// store keeps state.json and the event queue under the state directory.
type store struct {
	// mu guards st.Updates between the cycle, which changes it, and the
	// control socket's readers (records).
	mu     sync.Mutex
	dir    string
	st     agentState
	events *journal
	queue  []Event // not yet delivered, in order
	now    func() time.Time
}

func openStore(dir string, now func() time.Time) (*store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("state dir: %w", err)
	}
	if err := atomicfile.RemoveStale(dir); err != nil {
		return nil, err
	}
	s := &store{dir: dir, now: now, st: agentState{Format: stateFormat, Updates: map[string]*UpdateRecord{}, NextSeq: 1}}
	b, err := os.ReadFile(filepath.Join(dir, "state.json"))
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("read state: %w", err)
	default:
		if err := json.Unmarshal(b, &s.st); err != nil {
			return nil, fmt.Errorf("read %s: %w (move it aside to start from scratch; updates already installed stay installed)", filepath.Join(dir, "state.json"), err)
		}
		if s.st.Format != stateFormat {
			return nil, fmt.Errorf("%s is format %d, this bulwark reads format %d: run the bulwark release that wrote it, or move the state directory aside", filepath.Join(dir, "state.json"), s.st.Format, stateFormat)
		}
		if s.st.Updates == nil {
			s.st.Updates = map[string]*UpdateRecord{}
		}
	}
	s.events, err = openJournal(filepath.Join(dir, "events.jsonl"), func(line []byte) error {
		var e Event
		if err := decodeStrict(line, &e); err != nil {
			return err
		}
		if e.Seq > s.st.DeliveredSeq {
			s.queue = append(s.queue, e)
		}
		if e.Seq >= s.st.NextSeq {
			s.st.NextSeq = e.Seq + 1
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

func (s *store) close() error { return s.events.close() }

func (s *store) save() error {
	b, err := json.MarshalIndent(s.st, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(s.dir, "state.json"), append(b, '\n'), 0o600)
}

// set records an update's state and queues an event when it changed. The
// event is on disk before state.json says the new state, so a crash between
// them re-sends rather than loses.
func (s *store) set(key string, st State, reason string, info *UpdateRecord) error {
	s.mu.Lock()
	rec := s.st.Updates[key]
	if rec == nil {
		rec = &UpdateRecord{Key: key}
		s.st.Updates[key] = rec
	}
	if info != nil {
		rec.Title, rec.Severity, rec.Revision = info.Title, info.Severity, info.Revision
	}
	if rec.State == st && rec.Reason == reason {
		s.mu.Unlock()
		return nil
	}
	rec.State, rec.Reason, rec.Changed = st, reason, s.now().UTC()
	s.mu.Unlock()
	e := Event{Seq: s.st.NextSeq, Key: key, State: st, Reason: reason, Revision: rec.Revision, Time: rec.Changed}
	if err := s.events.append(e); err != nil {
		return err
	}
	s.st.NextSeq++
	s.queue = append(s.queue, e)
	return s.save()
}

// installed reports the keys this agent has installed (a pending reboot
// counts: the files are in place).
func (s *store) installed() map[string]bool {
	m := map[string]bool{}
	for k, r := range s.st.Updates {
		if r.State == StateInstalled || r.State == StatePendingReboot {
			m[k] = true
		}
	}
	return m
}

// pending returns up to max undelivered events.
func (s *store) pending(max int) []Event {
	if len(s.queue) > max {
		return append([]Event(nil), s.queue[:max]...)
	}
	return append([]Event(nil), s.queue...)
}

// delivered drops the events up to seq, acknowledged by the server, and
// compacts the event file once everything is delivered.
func (s *store) delivered(seq int64) error {
	if seq <= s.st.DeliveredSeq {
		return nil
	}
	s.st.DeliveredSeq = seq
	i := sort.Search(len(s.queue), func(i int) bool { return s.queue[i].Seq > seq })
	s.queue = s.queue[i:]
	if err := s.save(); err != nil {
		return err
	}
	if len(s.queue) == 0 {
		if err := s.events.f.Truncate(0); err != nil {
			return err
		}
		if _, err := s.events.f.Seek(0, 0); err != nil {
			return err
		}
	}
	return nil
}

// records returns every update record, sorted by key.
func (s *store) records() []UpdateRecord {
	s.mu.Lock()
	out := make([]UpdateRecord, 0, len(s.st.Updates))
	for _, r := range s.st.Updates {
		out = append(out, *r)
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}
