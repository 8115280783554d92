package agent

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/bulwarkhq/bulwark/internal/lockdown"
)

// Config is what an Agent needs.
type Config struct {
	StateDir string // 0700; state.json, the event queue, the pass journal
	Root     string // "/" or a directory root (golden images, tests)
	Policy   Policy
	Reboot   Reboot
	Handlers Handlers
	Logger   *slog.Logger
	Now      func() time.Time
	// LockdownCommander runs the lockdown engine's validators and reloads
	// (nil: the real programs).
	LockdownCommander lockdown.Commander
}

// Agent is the update agent of one machine.
type Agent struct {
	cfg    Config
	log    *slog.Logger
	store  *store
	passID string
	// onStep, when set, is told when an update's download or install
	// starts (the control socket streams it as progress).
	onStep func(key, phase string)
}

func (a *Agent) step(key, phase string) {
	if a.onStep != nil {
		a.onStep(key, phase)
	}
}

// Open loads the agent's state, finishing the bookkeeping of a pass that a
// crash interrupted and noticing a reboot that happened.
func Open(cfg Config) (*Agent, error) {
	if cfg.StateDir == "" {
		return nil, fmt.Errorf("agent: a state directory is required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Reboot.BootIDPath == "" {
		cfg.Reboot.BootIDPath = "/proc/sys/kernel/random/boot_id"
	}
	if cfg.Root == "" {
		cfg.Root = "/"
	}
	s, err := openStore(cfg.StateDir, cfg.Now)
	if err != nil {
		return nil, err
	}
	a := &Agent{cfg: cfg, log: cfg.Logger, store: s}
	if err := a.recover(); err != nil {
		s.close()
		return nil, err
	}
	return a, nil
}

// OnStep sets a function told when an update's download or install
// starts; for progress outside the daemon (install from offline media).
func (a *Agent) OnStep(f func(key, phase string)) { a.onStep = f }

// Close releases the agent's files.
func (a *Agent) Close() error { return a.store.close() }

// Updates returns what the agent knows about every update.
func (a *Agent) Updates() []UpdateRecord { return a.store.records() }
