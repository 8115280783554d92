package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"path/filepath"

	"github.com/bulwarkhq/bulwark/internal/pki"
)

// ReloadTLS re-reads the server certificate from the data directory (making
// a new one when it is near expiry or lacks a configured name, as at start)
// and serves it to new connections. The site CA cannot change this way:
// agents pin it, so a different CA on disk is refused and the running
// certificate kept.
func (s *Server) ReloadTLS() error {
	hosts, err := certHosts(s.cfg)
	if err != nil {
		return err
	}
	m, _, err := pki.LoadOrCreate(filepath.Join(s.cfg.DataDir, tlsDir), pki.Options{Hosts: hosts, Now: s.cfg.Now})
	if err != nil {
		return fmt.Errorf("reload TLS material: %w", err)
	}
	if !bytes.Equal(m.CA.Cert.Raw, s.tls.CA.Cert.Raw) {
		return fmt.Errorf("reload TLS material: the site CA in %s changed; agents pin it, so the server keeps the running one (restart to change it)", filepath.Join(s.cfg.DataDir, tlsDir))
	}
	s.cert.Store(&m.Server)
	return nil
}

// ServerCertificate is the certificate the server presents now (the last
// one SIGHUP loaded).
func (s *Server) ServerCertificate() *tls.Certificate { return s.cert.Load() }

// reloadOn reloads the TLS material and calls OnReload at each signal on
// reload until ctx ends. A failed reload keeps what runs.
func (s *Server) reloadOn(ctx context.Context, reload <-chan struct{}) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-reload:
		}
		if err := s.ReloadTLS(); err != nil {
			s.log.Error("reload: keeping the running TLS material", "err", err)
		} else {
			s.log.Info("reload: TLS material re-read")
		}
		if s.cfg.OnReload != nil {
			if err := s.cfg.OnReload(); err != nil {
				s.log.Error("reload: keeping the running settings", "err", err)
			}
		}
	}
}
