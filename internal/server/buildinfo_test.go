package server

import (
	"net/http"
	"runtime"
	"strings"
	"testing"

	"github.com/bulwarkhq/bulwark/internal/version"
)

func TestBuildInfoMetric(t *testing.T) {
	ts := startServer(t, Config{})
	m := string(ts.admin("GET", "/metrics", nil, http.StatusOK))
	want := `bulwark_build_info{goversion="` + runtime.Version() + `",version="` + version.String() + `"} 1`
	if !strings.Contains(m, want) {
		t.Fatalf("no %s in /metrics", want)
	}
}
