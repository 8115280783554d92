package fetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// copyBuf is the size of the one buffer a download streams through, and the
// largest chunk taken from the limiter at once.
const copyBuf = 32 << 10

// Retries after a transient failure (a cut connection, a 503), each after an
// exponential backoff with full jitter, all within Limits.Timeout.
const (
	maxAttempts = 6
	backoffBase = 200 * time.Millisecond
	backoffMax  = 10 * time.Second
)

// meter counts what one attempt moved, for the speed watchdog.
type meter struct {
	bytes     atomic.Int64
	waited    atomic.Int64 // nanoseconds spent in finished limiter waits
	waitStart atomic.Int64 // unix nanoseconds a limiter wait began, 0 if none
}

// waitedAt is the time spent waiting for the limiter up to now.
func (m *meter) waitedAt(now time.Time) int64 {
	w := m.waited.Load()
	if s := m.waitStart.Load(); s != 0 {
		w += max(0, now.UnixNano()-s)
	}
	return w
}

// meteredReader counts bytes and takes limiter tokens for each chunk, and in
// Background mode pacing tokens too. Time waiting for the limiter does not
// count against the speed watchdog (the caller chose that limit); time
// waiting for pacing does (a source must not be able to slow a download
// below Limits.MinSpeed by answering probes slowly).
type meteredReader struct {
	ctx  context.Context
	r    io.Reader
	lim  *rate.Limiter
	pace *Pacer // nil in Foreground mode
	m    *meter
	now  func() time.Time
}

func (mr *meteredReader) Read(p []byte) (int, error) {
	// A file:// body does not see cancellation by itself.
	if mr.ctx.Err() != nil {
		return 0, context.Cause(mr.ctx)
	}
	limited := mr.lim != nil && mr.lim.Limit() != rate.Inf
	if limited {
		b := mr.lim.Burst()
		if b <= 0 {
			return 0, fmt.Errorf("fetch: limiter burst is %d; want a burst of at least 1 byte", b)
		}
		if len(p) > b {
			p = p[:b]
		}
	}
	if mr.pace != nil {
		p = p[:min(len(p), mr.pace.chunk(), mr.pace.lim.Burst())]
	}
	n, err := mr.r.Read(p)
	if n > 0 {
		mr.m.bytes.Add(int64(n))
		if mr.pace != nil {
			mr.pace.read.Add(int64(n))
			if werr := mr.pace.lim.WaitN(mr.ctx, n); werr != nil && err == nil {
				err = waitFailure(mr.ctx)
			}
		}
		if limited {
			start := mr.now()
			mr.m.waitStart.Store(start.UnixNano())
			werr := mr.lim.WaitN(mr.ctx, n)
			mr.m.waited.Add(int64(mr.now().Sub(start)))
			mr.m.waitStart.Store(0)
			if werr != nil && err == nil {
				err = waitFailure(mr.ctx)
			}
		}
	}
	return n, err
}

// waitFailure is the error of a limiter wait that failed.
func waitFailure(ctx context.Context) error {
	if cause := context.Cause(ctx); cause != nil {
		return cause
	}
	// WaitN refuses at once a wait that would pass the deadline.
	return fmt.Errorf("%w: bandwidth limit cannot deliver before the deadline", ErrTimeout)
}

// watch cancels an attempt with ErrTooSlow once the speed averaged over
// lim.SpeedWindow (not counting limiter waits) falls below lim.MinSpeed,
// which includes a source that stalls before or after its headers. Call the
// returned stop when the attempt ends.
func (c *Client) watch(ctx context.Context, cancel context.CancelCauseFunc, m *meter, lim Limits) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tick := max(lim.SpeedWindow/4, time.Millisecond)
		t := time.NewTicker(tick)
		defer t.Stop()
		t0, b0, w0 := c.now(), int64(0), int64(0)
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
			now := c.now()
			b, w := m.bytes.Load(), m.waitedAt(now)
			active := now.Sub(t0) - time.Duration(w-w0)
			if active < lim.SpeedWindow {
				continue
			}
			if float64(b-b0) < float64(lim.MinSpeed)*active.Seconds() {
				cancel(fmt.Errorf("%w: %d bytes in %v, minimum %d B/s", ErrTooSlow, b-b0, active.Round(time.Millisecond), lim.MinSpeed))
				return
			}
			t0, b0, w0 = now, b, w
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}

// attemptFailure is what an attempt that failed with err reports: the
// attempt context's cause (ErrTooSlow, ErrTimeout, the caller's
// cancellation) wins over the I/O error that cancellation produced.
func attemptFailure(ctx context.Context, err error) error {
	if cause := context.Cause(ctx); cause != nil {
		// Not worth a retry: the cause ends the whole fetch.
		if te, ok := err.(*transientError); ok {
			err = te.err
		}
		if errors.Is(err, cause) {
			return err
		}
		return fmt.Errorf("%w (%v)", cause, err)
	}
	return err
}

// sleepBackoff waits before attempt (1-based retry count), or returns the
// context's cause.
func sleepBackoff(ctx context.Context, retry int) error {
	d := backoffBase << min(retry-1, 10)
	d = min(d, backoffMax)
	d = time.Duration(rand.Int64N(int64(d))) + time.Millisecond
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}
