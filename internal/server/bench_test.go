package server

import (
	"net/http/httptest"
	"testing"
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
