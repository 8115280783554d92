package fetch

import (
	"bytes"
	"context"
	"fmt"
	"io"
)

// Bytes returns the body at url, at most lim.MaxBytes of it (required).
// A larger body fails with ErrTooLarge whatever Content-Length says; gzip
// Content-Encoding is decoded transparently and the cap applies to the
// decoded bytes. Transient failures are retried within lim.Timeout.
func (c *Client) Bytes(ctx context.Context, url string, lim Limits) ([]byte, error) {
	lim, err := lim.withDefaults(defaultBytesTimeout)
	if err != nil {
		return nil, err
	}
	if lim.MaxBytes == 0 {
		return nil, &InputError{"Limits.MaxBytes", "0", "a positive number of bytes (Bytes needs a cap)"}
	}
	src, err := parseSource(url)
	if err != nil {
		return nil, err
	}
	ctx, cancel := opContext(ctx, lim)
	defer cancel()
	for attempt := 1; ; attempt++ {
		b, err := c.bytesOnce(ctx, src, lim)
		if err == nil {
			return b, nil
		}
		if !retryable(err) || attempt == maxAttempts {
			return nil, err
		}
		c.log.Warn("download failed; retrying", "url", src.name, "attempt", attempt, "err", err)
		if werr := sleepBackoff(ctx, attempt); werr != nil {
			return nil, fmt.Errorf("%w (after %v)", werr, err)
		}
	}
}

func (c *Client) bytesOnce(ctx context.Context, src *source, lim Limits) ([]byte, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	m := new(meter)
	stop := c.watch(ctx, cancel, m, lim)
	defer stop()

	r, err := c.open(ctx, c.hc, src, 0, "", false)
	if err != nil {
		return nil, attemptFailure(ctx, err)
	}
	defer r.body.Close()
	if r.length > lim.MaxBytes {
		return nil, fmt.Errorf("fetch %s: declared length %d exceeds limit %d: %w", src.name, r.length, lim.MaxBytes, ErrTooLarge)
	}
	var buf bytes.Buffer
	if r.length > 0 {
		buf.Grow(int(r.length))
	}
	body := &meteredReader{ctx: ctx, r: r.body, lim: c.limiter, m: m, now: c.now}
	n, err := buf.ReadFrom(io.LimitReader(body, lim.MaxBytes+1))
	if err != nil {
		return nil, attemptFailure(ctx, transient(fmt.Errorf("fetch %s: read body after %d bytes: %w", src.name, n, err)))
	}
	if n > lim.MaxBytes {
		return nil, fmt.Errorf("fetch %s: more than %d bytes: %w", src.name, lim.MaxBytes, ErrTooLarge)
	}
	return buf.Bytes(), nil
}
