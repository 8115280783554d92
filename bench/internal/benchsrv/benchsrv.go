// Package benchsrv starts a real update server on loopback for the
// benchmarks (bench/agent, bench/install), with an admin API client. It is
// for benchmarks only.
package benchsrv

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"

	"github.com/bulwarkhq/bulwark/internal/pki"
	"github.com/bulwarkhq/bulwark/internal/server"
)

// Server is a running update server and its first admin token.
type Server struct {
	*server.Server
	hc    *http.Client
	token string
}

// Start opens a server with its data under work, hosting the vendor
// repository in vendorDir as "debian", and serves it on a loopback port
// until ctx ends.
func Start(ctx context.Context, work, vendorDir string) (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv, first, err := server.Open(ctx, server.Config{DataDir: filepath.Join(work, "data"), PublicURL: "https://" + ln.Addr().String(),
		Vendors: []server.HostedVendor{{Name: "debian", Dir: vendorDir}}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return nil, err
	}
	ready := make(chan struct{})
	go srv.Serve(ctx, ln, nil, func() { close(ready) })
	<-ready
	tc, err := pki.PinnedClientConfig(srv.CAFingerprint())
	if err != nil {
		return nil, err
	}
	return &Server{Server: srv, hc: &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}, token: first.AdminToken}, nil
}

// API calls the admin API with body as JSON and returns the answer.
func (s *Server) API(method, path string, body any) ([]byte, error) {
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, s.URL()+path, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+s.token)
	resp, err := s.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return nil, fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, out)
	}
	return out, nil
}
