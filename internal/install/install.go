// Package install holds the agent's install handlers: deb (the real dpkg,
// into "/" or a directory root) and archive (a tar.zst extracted under a
// declared prefix with every escape refused). Each installs and removes one
// update from payload files the caller has already verified against signed
// metadata.
//
// It must not download or verify anything, decide whether an update applies,
// or trust the contents of a payload: archives are read defensively with
// caps, and packages are handed to dpkg with arguments built here, never
// taken from the update.
package install

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/bulwarkhq/bulwark/internal/catalog"
)

// Request is one install or uninstall of one update.
type Request struct {
	Update   *catalog.Update
	Payloads map[string]string // payload file name → path of the verified local file
	Root     string            // "/" or a directory root (golden images, tests)
	StateDir string            // where handlers keep what uninstall needs (0700)
	// Force makes an archive uninstall remove files that changed since
	// they were installed (otherwise refused with ErrChanged).
	Force bool
}

// Result says what a handler did.
type Result struct {
	// RebootRequired is set when the update says reboot: required, or when
	// it says maybe and the handler found a reboot is needed (dpkg's
	// maintainer scripts created or touched ROOT/run/reboot-required).
	RebootRequired bool
	Output         string // what the tool printed, trimmed, at most MaxOutput bytes
}

// Handler installs and removes one kind of update.
type Handler interface {
	Install(ctx context.Context, req Request) (Result, error)
	Uninstall(ctx context.Context, req Request) (Result, error)
}

// Options configure the handlers.
type Options struct {
	Logger   *slog.Logger // nil: discard
	DpkgPath string       // default "dpkg"
	// AptGetPath is the host's apt-get, used for root "/" (default
	// "apt-get"; without one "/" is installed with dpkg alone).
	AptGetPath string
	// NoApt makes the deb handler use dpkg alone even where the root has
	// apt (the Pre-Depends ordering is then the handler's own).
	NoApt bool
	// Archive limits; zero values take the defaults below.
	MaxFiles    int   // entries in one archive (default 100000)
	MaxBytes    int64 // bytes of file content in one archive (default 4 GiB)
	AllowSetuid bool  // keep setuid/setgid bits instead of refusing the entry
}

// Defaults for Options.
const (
	DefaultMaxFiles = 100_000
	DefaultMaxBytes = 4 << 30
	MaxOutput       = 64 << 10 // bytes of tool output kept in Result and Failure
)

// Handler types ForType knows.
var types = []string{catalog.InstallerDeb, catalog.InstallerArchive, catalog.InstallerLockdown}

// ForType returns the handler for installer type t ("deb" or "archive").
func ForType(t string, opts Options) (Handler, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.DpkgPath == "" {
		opts.DpkgPath = "dpkg"
	}
	if opts.AptGetPath == "" {
		opts.AptGetPath = "apt-get"
	}
	if opts.MaxFiles <= 0 {
		opts.MaxFiles = DefaultMaxFiles
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	switch t {
	case catalog.InstallerDeb:
		return &Deb{opts: opts, log: opts.Logger.With("handler", "deb")}, nil
	case catalog.InstallerArchive:
		return &Archive{opts: opts, log: opts.Logger.With("handler", "archive")}, nil
	case catalog.InstallerLockdown:
		return &Lockdown{log: opts.Logger.With("handler", "lockdown"), now: time.Now}, nil
	}
	return nil, fmt.Errorf("installer type %q: no handler here (valid: %s)", t, strings.Join(types, ", "))
}

// Sentinels callers branch on.
var (
	// ErrNotUninstallable: the update does not say uninstallable: true.
	ErrNotUninstallable = errors.New("update is not uninstallable")
	// ErrUnsafeEntry: an archive entry was refused (escape, device, bomb…).
	ErrUnsafeEntry = errors.New("unsafe archive entry")
	// ErrChanged: files installed by an archive changed since; uninstall
	// refuses to remove them unless forced.
	ErrChanged = errors.New("installed files changed since install")
	// ErrNoShell: a directory root without /bin/sh was asked to install or
	// remove packages with maintainer scripts, which must run inside it.
	ErrNoShell = errors.New("root cannot run maintainer scripts")
	// ErrBadRequest: the request itself is malformed (missing payload,
	// relative root, …).
	ErrBadRequest = errors.New("bad install request")
)

// Failure is why an install or uninstall failed, in words a person reads.
type Failure struct {
	Update string // update ID
	Step   string // e.g. "dpkg --install", "extract", "uninstall"
	Reason string // e.g. dpkg's "dependency problems - leaving unconfigured …"
	Err    error  // the cause, for logs and errors.Is
}

func (f *Failure) Error() string {
	s := f.Update + ": " + f.Step + ": " + f.Reason
	if f.Err != nil && !strings.Contains(f.Reason, f.Err.Error()) {
		s += " (" + f.Err.Error() + ")"
	}
	return s
}

func (f *Failure) Unwrap() error { return f.Err }

// check validates what every handler needs from a request.
// checkUninstall is what every handler's Uninstall checks first: a
// well-formed request for an update whose vendor-signed metadata says it may
// be removed.
func (r *Request) checkUninstall() error {
	if err := r.check(false); err != nil {
		return err
	}
	if !r.Update.Uninstallable {
		return fmt.Errorf("update %s: %w (its metadata does not say uninstallable: true)", r.Update.ID, ErrNotUninstallable)
	}
	return checkID(r.Update.ID)
}

func (r *Request) check(needPayloads bool) error {
	if r.Update == nil {
		return fmt.Errorf("request has no update: %w", ErrBadRequest)
	}
	if r.Root == "" || !filepath.IsAbs(r.Root) {
		return fmt.Errorf("update %s: root %q: want an absolute directory such as / : %w", r.Update.ID, r.Root, ErrBadRequest)
	}
	if r.StateDir == "" || !filepath.IsAbs(r.StateDir) {
		return fmt.Errorf("update %s: state dir %q: want an absolute directory: %w", r.Update.ID, r.StateDir, ErrBadRequest)
	}
	if !needPayloads {
		return nil
	}
	if len(r.Update.Payloads) == 0 {
		return fmt.Errorf("update %s has no payloads: %w", r.Update.ID, ErrBadRequest)
	}
	for _, p := range r.Update.Payloads {
		if _, ok := r.Payloads[p.File]; !ok {
			have := make([]string, 0, len(r.Payloads))
			for k := range r.Payloads {
				have = append(have, k)
			}
			slices.Sort(have)
			return fmt.Errorf("update %s: payload %q has no local file (have: %s): %w", r.Update.ID, p.File, strings.Join(have, ", "), ErrBadRequest)
		}
	}
	return nil
}

// cappedBuffer keeps the first max bytes written to it and counts the rest.
// It is safe for the concurrent writes of a command's stdout and stderr.
type cappedBuffer struct {
	mu      sync.Mutex
	max     int
	buf     []byte
	dropped int64
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	room := b.max - len(b.buf)
	if room > len(p) {
		room = len(p)
	}
	if room > 0 {
		b.buf = append(b.buf, p[:room]...)
	}
	b.dropped += int64(len(p) - room)
	return len(p), nil
}

func (b *cappedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := strings.TrimSpace(string(b.buf))
	if b.dropped > 0 {
		s += fmt.Sprintf("\n[%d more bytes not kept]", b.dropped)
	}
	return s
}
