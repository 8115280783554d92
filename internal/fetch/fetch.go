// Package fetch is Bulwark's downloader: it moves bytes from http(s):// and
// file:// URLs to memory (Bytes, for metadata) or to disk (File, for
// payloads), enforcing limits against the endless-data and slow-retrieval
// attacks, resuming interrupted downloads with HTTP Range, throttling with a
// shared token bucket, yielding to other traffic in Background mode, and
// verifying length and every wanted hash (SHA-256, SHA-512) while writing.
//
// It must not know about catalogs, approvals or TUF roles: callers tell it
// how many bytes to accept and which hash to expect. It must never hold a
// whole payload in memory (File streams through a fixed buffer), and it must
// never leave an unverified file at the destination path: bytes live in
// dst+".partial" until length and hash match, and only then are renamed.
package fetch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"golang.org/x/time/rate"
)

// Sentinel errors that callers branch on. Errors returned by this package
// wrap them, so test with errors.Is.
var (
	// ErrTooLarge: the source offered more bytes than the caller accepts
	// (endless-data attack, a lying Content-Length, a gzip bomb).
	ErrTooLarge = errors.New("fetch: more data than allowed")
	// ErrTooSlow: the average speed over Limits.SpeedWindow fell below
	// Limits.MinSpeed, or the source stalled (slow-retrieval attack).
	ErrTooSlow = errors.New("fetch: download too slow")
	// ErrTimeout: the whole fetch, retries included, took longer than
	// Limits.Timeout.
	ErrTimeout = errors.New("fetch: download timed out")
	// ErrHashMismatch: the downloaded bytes do not have a wanted hash.
	ErrHashMismatch = errors.New("fetch: hash mismatch")
	// ErrLengthMismatch: the source has fewer bytes than wanted.
	ErrLengthMismatch = errors.New("fetch: length mismatch")
)

// HTTPError reports a non-2xx answer. A file:// URL naming a file that does
// not exist is reported as StatusCode 404, so that callers (and go-tuf's root
// rotation) treat a repository on disk like one served over HTTP.
type HTTPError struct {
	URL        string // redacted of any password
	StatusCode int
	err        error // underlying cause, for file:// sources
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("fetch %s: status %d %s", e.URL, e.StatusCode, http.StatusText(e.StatusCode))
}

// Unwrap returns the local cause of a file:// "404" (fs.ErrNotExist), if any.
func (e *HTTPError) Unwrap() error { return e.err }

// InputError reports an argument the caller got wrong: which one, what it
// was, and what would be valid.
type InputError struct {
	Name  string // e.g. "Limits.MaxBytes"
	Value string
	Valid string // e.g. "a positive number of bytes"
}

func (e *InputError) Error() string {
	return fmt.Sprintf("fetch: invalid %s %s: want %s", e.Name, e.Value, e.Valid)
}

// Limits bound one fetch.
type Limits struct {
	// MaxBytes is a hard cap on the bytes accepted (endless-data attack).
	// Required (>0) for Bytes. For File, want.Length is the cap and MaxBytes,
	// if set, must not be smaller than it.
	MaxBytes int64
	// Timeout is the total time for one fetch, all retries and resumes
	// included. 0 means 5 minutes for Bytes and no limit for File.
	Timeout time.Duration
	// MinSpeed in bytes per second, averaged over SpeedWindow; slower fails
	// with ErrTooSlow. Time spent waiting for Options.Limiter does not count.
	// 0 means 1024 B/s.
	MinSpeed int64
	// SpeedWindow is the span MinSpeed is averaged over. 0 means 30s.
	SpeedWindow time.Duration
}

const (
	defaultBytesTimeout = 5 * time.Minute
	defaultMinSpeed     = 1024
	defaultSpeedWindow  = 30 * time.Second
)

// withDefaults validates lim and fills in defaults; bytesTimeout is the
// default Timeout (0 for none).
func (lim Limits) withDefaults(bytesTimeout time.Duration) (Limits, error) {
	switch {
	case lim.MaxBytes < 0:
		return lim, &InputError{"Limits.MaxBytes", fmt.Sprint(lim.MaxBytes), "a positive number of bytes"}
	case lim.Timeout < 0:
		return lim, &InputError{"Limits.Timeout", lim.Timeout.String(), "0 (default) or a positive duration"}
	case lim.MinSpeed < 0:
		return lim, &InputError{"Limits.MinSpeed", fmt.Sprint(lim.MinSpeed), "0 (default 1024) or a positive number of bytes per second"}
	case lim.SpeedWindow < 0:
		return lim, &InputError{"Limits.SpeedWindow", lim.SpeedWindow.String(), "0 (default 30s) or a positive duration"}
	}
	if lim.Timeout == 0 {
		lim.Timeout = bytesTimeout
	}
	if lim.MinSpeed == 0 {
		lim.MinSpeed = defaultMinSpeed
	}
	if lim.SpeedWindow == 0 {
		lim.SpeedWindow = defaultSpeedWindow
	}
	return lim, nil
}

// Options configure a Client.
type Options struct {
	// HTTPClient does the requests; nil means a client with connect and TLS
	// handshake timeouts (no overall timeout: Limits bound each fetch). A
	// caller pinning a CA supplies its own client with that TLS config.
	HTTPClient *http.Client
	// Limiter is a token bucket in bytes per second shared by all downloads
	// of this Client; nil means unlimited.
	Limiter *rate.Limiter
	// UserAgent is sent with every request when not empty.
	UserAgent string
	// Logger receives retries and resumes; nil discards.
	Logger *slog.Logger
	// Now is the clock for speed and progress measurement; nil is time.Now.
	Now func() time.Time
}

// Client downloads. It is safe for concurrent use.
type Client struct {
	hc      *http.Client
	bghc    *http.Client // hc with small receive buffers, for Background mode
	limiter *rate.Limiter
	ua      string
	log     *slog.Logger
	now     func() time.Time
}

// New returns a Client.
func New(opts Options) *Client {
	c := &Client{
		hc:      opts.HTTPClient,
		limiter: opts.Limiter,
		ua:      opts.UserAgent,
		log:     opts.Logger,
		now:     opts.Now,
	}
	if c.hc == nil {
		c.hc = defaultHTTPClient()
	}
	c.bghc = backgroundHTTPClient(c.hc)
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.now == nil {
		c.now = time.Now
	}
	return c
}

func defaultHTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	t.TLSHandshakeTimeout = 10 * time.Second
	t.ResponseHeaderTimeout = 0 // the speed watchdog covers a server that never answers
	t.MaxResponseHeaderBytes = 64 << 10
	return &http.Client{Transport: t}
}

// opContext bounds a whole fetch by lim.Timeout; its cause is ErrTimeout.
func opContext(ctx context.Context, lim Limits) (context.Context, context.CancelFunc) {
	if lim.Timeout > 0 {
		return context.WithTimeoutCause(ctx, lim.Timeout, ErrTimeout)
	}
	return context.WithCancel(ctx)
}
