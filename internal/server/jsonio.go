package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/bulwarkhq/bulwark/internal/store"
)

// Request body caps.
const (
	maxAdminBody  = 64 << 10
	maxEnrollBody = 64 << 10
	maxReportBody = 4 << 20
)

// httpError is an error with a status and a message meant for the client;
// the cause stays in the server's log.
type httpError struct {
	code int
	msg  string
	err  error
}

func (e *httpError) Error() string {
	if e.err != nil {
		return e.msg + ": " + e.err.Error()
	}
	return e.msg
}

func (e *httpError) Unwrap() error { return e.err }

func errorf(code int, format string, args ...any) error {
	return &httpError{code: code, msg: fmt.Sprintf(format, args...)}
}

// storeErr maps store sentinels to HTTP answers.
func storeErr(err error, what string) error {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return &httpError{code: http.StatusNotFound, msg: what + " not found", err: err}
	case errors.Is(err, store.ErrExists):
		return &httpError{code: http.StatusConflict, msg: what + " already exists", err: err}
	case errors.Is(err, store.ErrExhausted):
		return &httpError{code: http.StatusForbidden, msg: "token is expired, revoked or used up", err: err}
	}
	return err
}

// apiFunc is a handler that returns an error instead of writing one.
type apiFunc func(w http.ResponseWriter, r *http.Request) error

func (s *Server) api(f apiFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := f(w, r); err != nil {
			s.writeErr(w, r, err)
		}
	}
}

func (s *Server) writeErr(w http.ResponseWriter, r *http.Request, err error) {
	var he *httpError
	if !errors.As(err, &he) {
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		he = &httpError{code: http.StatusInternalServerError, msg: "internal error"}
	} else if he.code >= 500 {
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	} else {
		s.log.Debug("request refused", "method", r.Method, "path", r.URL.Path, "code", he.code, "err", err)
	}
	writeProblem(w, r, he.code, he.msg)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		// Only the server's own plain records are encoded here; this
		// cannot happen short of a programming error.
		code, b = http.StatusInternalServerError, []byte(`{"error":"internal error"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}

// decodeBody reads a JSON request body strictly: capped at max bytes, a
// JSON content type, no unknown fields, exactly one value.
func decodeBody(w http.ResponseWriter, r *http.Request, max int64, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && ct != "application/json" && !bytes.HasPrefix([]byte(ct), []byte("application/json;")) {
		return errorf(http.StatusUnsupportedMediaType, "content type %q: send application/json", ct)
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, max))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return errorf(http.StatusRequestEntityTooLarge, "request body over the %d byte limit", max)
		}
		return errorf(http.StatusBadRequest, "read request body: %v", err)
	}
	return decodeJSON(b, v)
}

// decodeJSON is decodeBody's parser, separate so fuzz targets reach it.
func decodeJSON(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errorf(http.StatusBadRequest, "request body: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errorf(http.StatusBadRequest, "request body: data after the JSON value")
	}
	return nil
}
