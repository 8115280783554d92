package server

import (
	"errors"
	"net/http"
	"time"

	"github.com/bulwarkhq/bulwark/internal/pki"
	"github.com/bulwarkhq/bulwark/internal/store"
	"github.com/bulwarkhq/bulwark/internal/wire"
)

// agentCertLifetime is how long the agent certificates this server issues
// are valid.
func (s *Server) agentCertLifetime() time.Duration {
	if s.cfg.AgentCertLifetime > 0 {
		return s.cfg.AgentCertLifetime
	}
	return pki.AgentValidity
}

// handleRenew issues a new certificate to an agent that proves it holds its
// current one: the same agent id, a new key, a new serial, a full lifetime.
// The replaced certificate stays accepted until the agent first uses the new
// one, so an answer lost on the way does not lock the agent out; an expired
// certificate fails the TLS handshake and the machine enrolls again.
func (s *Server) handleRenew(w http.ResponseWriter, r *http.Request) error {
	a, err := s.agentFromTLS(r)
	if err != nil {
		return err
	}
	if err := s.checkClone(r, a); err != nil {
		return err
	}
	var req wire.RenewRequest
	if err := decodeBody(w, r, maxEnrollBody, &req); err != nil {
		return err
	}
	csr, err := pki.ParseCSR([]byte(req.CSR))
	if err != nil {
		return &httpError{code: http.StatusBadRequest, msg: "csr: " + err.Error(), err: err}
	}
	now := s.now()
	lifetime := s.agentCertLifetime()
	certPEM, serial, err := s.tls.CA.SignAgentFor(csr, a.ID, now, lifetime)
	if err != nil {
		return err
	}
	from := pki.SerialString(r.TLS.VerifiedChains[0][0].SerialNumber)
	notAfter := now.Add(lifetime).Truncate(time.Second)
	if err := s.st.RenewAgentCert(r.Context(), a.ID, from, serial, notAfter); errors.Is(err, store.ErrNotFound) {
		return errorf(http.StatusForbidden, "certificate was replaced by a later renewal or enrollment")
	} else if err != nil {
		return err
	}
	s.metrics.renewals.Inc()
	s.log.Info("agent certificate renewed", "agent", a.ID, "serial", serial, "not_after", notAfter)
	writeJSON(w, http.StatusOK, wire.RenewResponse{Certificate: string(certPEM), NotAfter: notAfter})
	return nil
}
