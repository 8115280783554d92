package server

import (
	"encoding/json"
	"net/http"
	"strings"
)

// Problem is an error answer in the RFC 9457 form (application/problem+json).
// Error repeats Detail for clients written before the problem form.
type Problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail,omitempty"`
	Instance string `json:"instance,omitempty"`
	Error    string `json:"error"`
}

// writeProblem answers with a problem document; a 401 also says how to
// authenticate (WWW-Authenticate, RFC 9110 §11.6.1).
func writeProblem(w http.ResponseWriter, r *http.Request, code int, detail string) {
	if code == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="bulwark"`)
	}
	b, _ := json.MarshalIndent(Problem{Type: "about:blank", Title: http.StatusText(code), Status: code, Detail: detail,
		Instance: r.URL.Path, Error: detail}, "", "  ")
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}

// statusOnly records what a handler answers without sending it.
type statusOnly struct {
	h    http.Header
	code int
}

func (s *statusOnly) Header() http.Header { return s.h }
func (s *statusOnly) Write(b []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return len(b), nil
}
func (s *statusOnly) WriteHeader(code int) {
	if s.code == 0 {
		s.code = code
	}
}

// apiProblems makes the router's own answers under /api/ and /agent/ (no
// such route: 404; a route without this method: 405 with Allow) problem
// documents like every other API error, instead of text.
func apiProblems(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/api/") && !strings.HasPrefix(r.URL.Path, "/agent/") {
			mux.ServeHTTP(w, r)
			return
		}
		h, pattern := mux.Handler(r)
		if pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		rec := &statusOnly{h: http.Header{}}
		h.ServeHTTP(rec, r)
		switch rec.code {
		case http.StatusNotFound:
			writeProblem(w, r, rec.code, "no such API route: "+r.Method+" "+r.URL.Path+" (see /api/v1/openapi.json)")
		case http.StatusMethodNotAllowed:
			w.Header().Set("Allow", rec.h.Get("Allow"))
			writeProblem(w, r, rec.code, "method "+r.Method+" not allowed on "+r.URL.Path+"; allowed: "+rec.h.Get("Allow"))
		default:
			mux.ServeHTTP(w, r)
		}
	})
}
