package server

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/bulwarkhq/bulwark/internal/atomicfile"
)

// TLS session-ticket keys shared by every replica and kept across restarts,
// so that an agent resumes its TLS session (no certificate signature, no
// certificate chain verification) on whichever replica it reaches and after
// a restart. They live in DATA/tls/tickets (mode 0600, never logged),
// changed under an flock on DATA/tls/tickets.lock by whichever replica
// first sees the newest key older than ticketRotate. Tickets are encrypted
// with the newest key and decrypted with any key younger than ticketKeep;
// older keys are deleted from the file, so a key stolen later cannot open a
// ticket older than the window. See docs/SECURITY.md.
const (
	ticketFile   = "tickets"
	ticketRotate = 6 * time.Hour
	// ticketKeep is also Go's limit on a ticket's age (7 days).
	ticketKeep = 7 * 24 * time.Hour
	// ticketCheck is how often a replica reads the file for a key another
	// replica made.
	ticketCheck = time.Minute
)

type ticketKey struct {
	Created time.Time `json:"created"`
	Key     []byte    `json:"key"` // 32 bytes
}

// tickets keeps the current TLS configuration with the shared ticket keys.
type tickets struct {
	dir  string // DATA/tls
	now  func() time.Time
	base func() *tls.Config // the configuration without the keys

	mu     sync.Mutex
	loaded string // the creation times of the installed keys
	cfg    atomic.Pointer[tls.Config]
}

// refresh reads the key file under its lock, adds a key when the newest is
// older than ticketRotate, drops keys older than ticketKeep, and installs
// the keys (newest first) in a fresh configuration.
func (t *tickets) refresh() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	lf, err := os.OpenFile(filepath.Join(t.dir, ticketFile+".lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("ticket keys: %w", err)
	}
	defer lf.Close()
	if err := syscall.Flock(int(lf.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("ticket keys: lock: %w", err)
	}
	path := filepath.Join(t.dir, ticketFile)
	keys, err := readTicketKeys(path)
	if err != nil {
		return err
	}
	now := t.now()
	kept := slices.DeleteFunc(slices.Clone(keys), func(k ticketKey) bool { return now.Sub(k.Created) >= ticketKeep })
	if len(kept) == 0 || now.Sub(kept[0].Created) >= ticketRotate {
		k := ticketKey{Created: now, Key: make([]byte, 32)}
		rand.Read(k.Key)
		kept = append([]ticketKey{k}, kept...)
	}
	if len(kept) != len(keys) || !kept[0].Created.Equal(keys[0].Created) {
		b, _ := json.Marshal(struct {
			Keys []ticketKey `json:"keys"`
		}{kept})
		if err := atomicfile.WriteFile(path, b, 0o600); err != nil {
			return fmt.Errorf("ticket keys: %w", err)
		}
	}
	var loaded string
	raw := make([][32]byte, len(kept))
	for i, k := range kept {
		copy(raw[i][:], k.Key)
		loaded += k.Created.Format(time.RFC3339Nano) + " "
	}
	if t.cfg.Load() != nil && loaded == t.loaded {
		return nil
	}
	c := t.base()
	c.SetSessionTicketKeys(raw)
	t.cfg.Store(c)
	t.loaded = loaded
	return nil
}

// readTicketKeys reads the key file, newest key first; a missing file has
// none. A file that is not what this server writes is an error, not
// replaced: another replica may be running a different version.
func readTicketKeys(path string) ([]ticketKey, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ticket keys: %w", err)
	}
	var f struct {
		Keys []ticketKey `json:"keys"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("ticket keys: %s: %w (remove it to start a new set: agents then do one full handshake)", path, err)
	}
	for _, k := range f.Keys {
		if len(k.Key) != 32 {
			return nil, fmt.Errorf("ticket keys: %s: a key of %d bytes, want 32 (remove the file to start a new set)", path, len(k.Key))
		}
	}
	slices.SortFunc(f.Keys, func(a, b ticketKey) int { return b.Created.Compare(a.Created) })
	return f.Keys, nil
}

// loop reads the key file every ticketCheck until stop is closed.
func (t *tickets) loop(stop <-chan struct{}, log interface{ Error(string, ...any) }) {
	tk := time.NewTicker(ticketCheck)
	defer tk.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tk.C:
			if err := t.refresh(); err != nil {
				log.Error("tls session ticket keys", "err", err)
			}
		}
	}
}

// forClient is the tls.Config.GetConfigForClient of the served
// configuration: the same settings with the shared ticket keys.
func (t *tickets) forClient(*tls.ClientHelloInfo) (*tls.Config, error) {
	return t.cfg.Load(), nil
}
