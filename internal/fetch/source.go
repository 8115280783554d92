package fetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// maxValidator caps the ETag or Last-Modified value remembered for If-Range.
const maxValidator = 512

// errRestart says the source cannot continue a partial download (416, a
// Content-Range that does not start where asked, a changed file): start over.
var errRestart = errors.New("source cannot resume; starting over")

// transientError marks a failure worth retrying: a refused or cut
// connection, a server error.
type transientError struct{ err error }

func (e *transientError) Error() string { return e.err.Error() }
func (e *transientError) Unwrap() error { return e.err }

func transient(err error) error { return &transientError{err} }

// retryable reports whether another attempt may succeed.
func retryable(err error) bool {
	for _, final := range []error{ErrTooLarge, ErrTooSlow, ErrTimeout, ErrHashMismatch, ErrLengthMismatch, context.Canceled, context.DeadlineExceeded} {
		if errors.Is(err, final) {
			return false
		}
	}
	var te *transientError
	if errors.As(err, &te) {
		return true
	}
	var he *HTTPError
	if errors.As(err, &he) {
		switch he.StatusCode {
		case http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusBadGateway,
			http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return true
		}
	}
	return false
}

// source is a parsed, validated URL.
type source struct {
	u    *url.URL
	path string // file:// only
	name string // redacted, for errors and logs
}

func parseSource(raw string) (*source, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, &InputError{"URL", strconv.Quote(raw), "an http://, https:// or file:// URL"}
	}
	s := &source{u: u, name: u.Redacted()}
	switch u.Scheme {
	case "http", "https":
		if u.Host == "" {
			return nil, &InputError{"URL", strconv.Quote(s.name), "a host after " + u.Scheme + "://"}
		}
	case "file":
		if (u.Host != "" && u.Host != "localhost") || !filepath.IsAbs(u.Path) || u.RawQuery != "" {
			return nil, &InputError{"URL", strconv.Quote(s.name), "file:///absolute/path (no host other than localhost, no query)"}
		}
		s.path = filepath.Clean(u.Path)
	default:
		return nil, &InputError{"URL", strconv.Quote(s.name), "an http://, https:// or file:// URL"}
	}
	return s, nil
}

// response is an open body positioned at offset of the resource.
type response struct {
	body      io.ReadCloser
	offset    int64  // where body starts in the resource (0 unless resumed)
	length    int64  // bytes the source declared for body, -1 if unknown
	total     int64  // size of the whole resource if known, else -1
	validator string // strong ETag, Last-Modified, or a file's size+mtime
}

// open starts reading src at offset. With offset > 0 and ifRange set, the
// source answers from offset only if its validator still equals ifRange,
// else from 0 (check resp.offset). identity asks for the raw bytes (no
// transparent gzip decoding), which Range and hashing need.
func (c *Client) open(ctx context.Context, hc *http.Client, src *source, offset int64, ifRange string, identity bool) (*response, error) {
	if src.path != "" {
		return openFile(src, offset, ifRange)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, src.u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", src.name, err)
	}
	if c.ua != "" {
		req.Header.Set("User-Agent", c.ua)
	}
	if identity {
		req.Header.Set("Accept-Encoding", "identity")
	}
	if offset > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", offset))
		if ifRange != "" {
			req.Header.Set("If-Range", ifRange)
		}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, transient(fmt.Errorf("fetch %s: %w", src.name, err))
	}
	r := &response{body: resp.Body, length: resp.ContentLength, total: -1, validator: validatorOf(resp.Header)}
	switch {
	case resp.StatusCode == http.StatusPartialContent:
		first, last, total, err := parseContentRange(resp.Header.Get("Content-Range"))
		if err != nil || first != offset || (resp.ContentLength >= 0 && resp.ContentLength != last-first+1) {
			resp.Body.Close()
			return nil, fmt.Errorf("fetch %s: asked for bytes from %d, got Content-Range %q: %w",
				src.name, offset, resp.Header.Get("Content-Range"), errRestart)
		}
		r.offset, r.length, r.total = first, last-first+1, total
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable && offset > 0:
		resp.Body.Close()
		return nil, fmt.Errorf("fetch %s: range from %d not satisfiable: %w", src.name, offset, errRestart)
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		r.total = resp.ContentLength
	default:
		resp.Body.Close()
		return nil, &HTTPError{URL: src.name, StatusCode: resp.StatusCode}
	}
	return r, nil
}

// validatorOf picks what to send in If-Range: a strong ETag, else
// Last-Modified (weak ETags are not allowed there).
func validatorOf(h http.Header) string {
	v := h.Get("ETag")
	if v == "" || strings.HasPrefix(v, "W/") {
		v = h.Get("Last-Modified")
	}
	if len(v) > maxValidator {
		return ""
	}
	return v
}

func openFile(src *source, offset int64, ifRange string) (*response, error) {
	f, err := os.Open(src.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, &HTTPError{URL: src.name, StatusCode: http.StatusNotFound, err: err}
	}
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", src.name, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("fetch %s: %w", src.name, err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("fetch %s: not a regular file (%s)", src.name, fi.Mode().Type())
	}
	r := &response{
		body:      f,
		length:    fi.Size(),
		total:     fi.Size(),
		validator: fmt.Sprintf("file %d %d", fi.Size(), fi.ModTime().UnixNano()),
	}
	if offset == 0 || (ifRange != "" && ifRange != r.validator) {
		return r, nil
	}
	if offset > fi.Size() {
		f.Close()
		return nil, fmt.Errorf("fetch %s: range from %d beyond size %d: %w", src.name, offset, fi.Size(), errRestart)
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		f.Close()
		return nil, fmt.Errorf("fetch %s: %w", src.name, err)
	}
	r.offset, r.length = offset, fi.Size()-offset
	return r, nil
}

// parseContentRange parses a Content-Range header of a 206 answer,
// "bytes first-last/complete" or "bytes first-last/*". total is -1 for "*".
// It refuses anything else, signs, spaces, overflow, first > last, and
// last >= complete.
func parseContentRange(s string) (first, last, total int64, err error) {
	bad := func(why string) (int64, int64, int64, error) {
		return 0, 0, 0, fmt.Errorf("content-range %q: %s; want \"bytes first-last/complete\"", truncate(s, 100), why)
	}
	rest, ok := strings.CutPrefix(s, "bytes ")
	if !ok {
		return bad("not a bytes range")
	}
	rng, size, ok := strings.Cut(rest, "/")
	if !ok {
		return bad("no /")
	}
	a, b, ok := strings.Cut(rng, "-")
	if !ok {
		return bad("no -")
	}
	if first, ok = parseDigits(a); !ok {
		return bad("bad first byte")
	}
	if last, ok = parseDigits(b); !ok {
		return bad("bad last byte")
	}
	if first > last {
		return bad("first byte after last")
	}
	total = -1
	if size != "*" {
		if total, ok = parseDigits(size); !ok {
			return bad("bad complete length")
		}
		if last >= total {
			return bad("last byte beyond complete length")
		}
	}
	return first, last, total, nil
}

// parseDigits parses 1 to 18 ASCII digits (no sign, no space), so the value
// always fits an int64.
func parseDigits(s string) (int64, bool) {
	if len(s) == 0 || len(s) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int64(s[i]-'0')
	}
	return n, true
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// resumable reports whether a failed download was interrupted rather than
// refused: its partial bytes are worth keeping for the next call.
func resumable(err error) bool {
	for _, final := range []error{ErrTooLarge, ErrHashMismatch, ErrLengthMismatch} {
		if errors.Is(err, final) {
			return false
		}
	}
	for _, cut := range []error{ErrTooSlow, ErrTimeout, context.Canceled, context.DeadlineExceeded} {
		if errors.Is(err, cut) {
			return true
		}
	}
	var te *transientError
	return errors.As(err, &te) || retryable(err)
}
