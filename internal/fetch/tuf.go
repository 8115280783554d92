package fetch

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/fetcher"
)

// TUFFetcher adapts the Client to go-tuf v2's fetcher.Fetcher, for metadata
// only: go-tuf holds what it downloads in memory, so payloads must go through
// File instead. go-tuf's interface carries no context, so ctx bounds every
// download of the returned fetcher. maxLength from go-tuf caps each download
// (and lim.MaxBytes too, when set and smaller); go-tuf's timeout argument, if
// set, shortens lim.Timeout.
//
// Errors are what go-tuf branches on — *metadata.ErrDownloadHTTP for a
// non-2xx status (it ends root rotation on 404),
// *metadata.ErrDownloadLengthMismatch for too much data, *metadata.ErrDownload
// for the rest — and this package's own errors (ErrTooLarge, ErrTooSlow,
// ErrTimeout, *HTTPError) stay reachable through errors.Is and errors.As.
func (c *Client) TUFFetcher(ctx context.Context, lim Limits) fetcher.Fetcher {
	return &tufFetcher{c: c, ctx: ctx, lim: lim}
}

type tufFetcher struct {
	c   *Client
	ctx context.Context
	lim Limits
}

var _ fetcher.Fetcher = (*tufFetcher)(nil)

func (t *tufFetcher) DownloadFile(urlPath string, maxLength int64, timeout time.Duration) ([]byte, error) {
	lim := t.lim
	if maxLength > 0 && (lim.MaxBytes <= 0 || maxLength < lim.MaxBytes) {
		lim.MaxBytes = maxLength
	}
	if timeout > 0 && (lim.Timeout <= 0 || timeout < lim.Timeout) {
		lim.Timeout = timeout
	}
	b, err := t.c.Bytes(t.ctx, urlPath, lim)
	if err != nil {
		return nil, tufError(err)
	}
	return b, nil
}

// tufErr carries go-tuf's error type next to ours.
type tufErr struct {
	tuf  error
	ours error
}

func (e *tufErr) Error() string   { return e.ours.Error() }
func (e *tufErr) Unwrap() []error { return []error{e.tuf, e.ours} }

func tufError(err error) error {
	var he *HTTPError
	switch {
	case errors.As(err, &he):
		return &tufErr{&metadata.ErrDownloadHTTP{StatusCode: he.StatusCode, URL: he.URL}, err}
	case errors.Is(err, ErrTooLarge):
		return &tufErr{&metadata.ErrDownloadLengthMismatch{Msg: err.Error()}, err}
	default:
		return &tufErr{&metadata.ErrDownload{Msg: fmt.Sprint(err)}, err}
	}
}
