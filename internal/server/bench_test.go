package server

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/wire"
)

// BenchmarkServeMetadata measures the handler alone (no network, no TLS)
// serving a small metadata file, the request agents make most.
func BenchmarkServeMetadata(b *testing.B) {
	v := newVendorRepo(b, "example")
	ts := startServer(b, Config{Vendors: []HostedVendor{{Name: "example", Dir: v.dir}}})
	h := ts.Handler()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", "/repos/example/metadata/timestamp.json", nil))
		if w.Code != 200 {
			b.Fatal(w.Code)
		}
	}
}

// BenchmarkEnroll measures one enrollment end to end on a kept-open HTTPS
// connection (client key and CSR made before the clock runs): for CPU
// profiles of the enrollment handler (go test -bench Enroll -cpuprofile).
func BenchmarkEnroll(b *testing.B) {
	ts := startServer(b, Config{EnrollLimits: EnrollLimits{TokenRate: 1e9, TokenBurst: 1e9}})
	tok := ts.newToken(TokenRequest{Kind: "enroll"})
	csr := csrFor(b, mustKey(b))
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		i++
		req := wire.EnrollRequest{Token: tok, CSR: csr, Facts: wire.Facts{MachineID: fmt.Sprintf("%032x", i), Hostname: "h", OS: "debian 12", Arch: "amd64"}}
		if code, body, _ := ts.do(ts.client, "POST", "/agent/v1/enroll", "", req); code != http.StatusCreated {
			b.Fatalf("%d %s", code, body)
		}
	}
}

// BenchmarkCheckinCycle measures an agent's full cycle after an approval (a
// check-in answered 200 and a report of five state changes) on kept-open
// connections, so the profile shows the handlers and the store rather than
// TLS handshakes (those are in bench/fleet).
func BenchmarkCheckinCycle(b *testing.B) {
	ts := startServer(b, Config{MaxConnsPerClient: 1000})
	ts.knowUpdates("example", "BW-1", "BW-2", "BW-3", "BW-4", "BW-5")
	tok := ts.newToken(TokenRequest{Kind: "enroll"})
	agents := make([]*testAgent, 64)
	for i := range agents {
		agents[i] = ts.enroll(tok, fmt.Sprintf("%032x", i+1), "")
	}
	var n atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			a := agents[i%int64(len(agents))]
			if code, body, _ := ts.agentDo(a, a.client, "GET", "/agent/v1/checkin", nil, nil); code != http.StatusOK {
				b.Errorf("check-in: %d %s", code, body)
				return
			}
			rep := wire.ReportRequest{BatchID: fmt.Sprintf("00000000-0000-4000-8000-%012x", i)}
			for u := 1; u <= 5; u++ {
				rep.Changes = append(rep.Changes, wire.StateChange{Key: fmt.Sprintf("example/BW-%d", u), State: "installed", Time: time.Now().UTC()})
			}
			if code, body, _ := ts.agentDo(a, a.client, "POST", "/agent/v1/report", rep, nil); code != http.StatusOK {
				b.Errorf("report: %d %s", code, body)
				return
			}
		}
	})
}

// BenchmarkCheckin304 measures the handler alone (no network, no TLS) on
// the request a fleet makes most: an unchanged conditional check-in,
// answered 304. The client certificate is the agent's real one, as the
// TLS layer would hand it over verified.
func BenchmarkCheckin304(b *testing.B) {
	ts := startServer(b, Config{})
	a := ts.enroll(ts.newToken(TokenRequest{Kind: "enroll"}), machineA, "")
	blk, _ := pem.Decode([]byte(a.resp.Certificate))
	leaf, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		b.Fatal(err)
	}
	cs := &tls.ConnectionState{HandshakeComplete: true, VerifiedChains: [][]*x509.Certificate{{leaf}}}
	h := ts.Handler()
	req := func(etag string) *http.Request {
		r := httptest.NewRequest("GET", "/agent/v1/checkin", nil)
		r.TLS = cs
		r.Header.Set(wire.MachineIDHeader, a.machineID)
		if etag != "" {
			r.Header.Set("If-None-Match", etag)
		}
		return r
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req(""))
	etag := w.Header().Get("ETag")
	if w.Code != 200 || etag == "" {
		b.Fatalf("first check-in: %d %q", w.Code, etag)
	}
	r := req(etag)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusNotModified {
			b.Fatal(w.Code)
		}
	}
}
