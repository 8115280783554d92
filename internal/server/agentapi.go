package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/bulwarkhq/bulwark/internal/catalog"
	"github.com/bulwarkhq/bulwark/internal/lockdown/audit"
	"github.com/bulwarkhq/bulwark/internal/pki"
	"github.com/bulwarkhq/bulwark/internal/store"
	"github.com/bulwarkhq/bulwark/internal/wire"
)

func (s *Server) agentRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /agent/v1/enroll", s.api(s.limitEnroll(s.handleEnroll)))
	mux.HandleFunc("GET /agent/v1/checkin", s.api(s.handleCheckin))
	mux.HandleFunc("POST /agent/v1/report", s.api(s.handleReport))
	mux.HandleFunc("GET /agent/v1/vendors", s.api(s.handleVendors))
	mux.HandleFunc("POST /agent/v1/renew", s.api(s.handleRenew))
}

var (
	archPattern     = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z0-9_-]{1,32}$`) })
	batchPattern    = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`) })
	updateIDPattern = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`) })
	hostnamePattern = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$`) })
)

// validMachineID says whether s is 8 to 64 letters, digits or '-' (the
// form of /etc/machine-id, and what every agent request carries: checked
// without a regular expression on that path).
func validMachineID(s string) bool {
	if len(s) < 8 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-':
		default:
			return false
		}
	}
	return true
}

// validateFacts checks the facts an agent enrolls with.
func validateFacts(f *wire.Facts) error {
	switch {
	case !validMachineID(f.MachineID):
		return errorf(http.StatusBadRequest, "facts.machine_id %q: use the 8 to 64 letters, digits or '-' of /etc/machine-id", f.MachineID)
	case !hostnamePattern().MatchString(f.Hostname):
		return errorf(http.StatusBadRequest, "facts.hostname %q: use a host name of letters, digits, '.' and '-'", f.Hostname)
	case f.OS == "" || len(f.OS) > 100 || !utf8.ValidString(f.OS) || strings.ContainsAny(f.OS, "\x00\n\r"):
		return errorf(http.StatusBadRequest, "facts.os: use 1 to 100 characters on one line, such as \"debian 12\"")
	case !archPattern().MatchString(f.Arch):
		return errorf(http.StatusBadRequest, "facts.arch %q: use an architecture name such as amd64 or arm64", f.Arch)
	}
	return nil
}

func (s *Server) handleEnroll(w http.ResponseWriter, r *http.Request) error {
	var req wire.EnrollRequest
	if err := decodeBody(w, r, maxEnrollBody, &req); err != nil {
		return err
	}
	if err := validateFacts(&req.Facts); err != nil {
		return err
	}
	if len(req.Token) > maxTokenLen || !strings.HasPrefix(req.Token, enrollTokenPrefix) {
		return errorf(http.StatusUnauthorized, "token: not an enrollment token")
	}
	ctx := r.Context()
	tok, err := s.st.TokenByHash(ctx, HashToken(req.Token))
	if errors.Is(err, store.ErrNotFound) {
		return errorf(http.StatusUnauthorized, "token: unknown enrollment token")
	} else if err != nil {
		return err
	}
	if tok.Kind != store.KindEnroll || !tok.Usable(s.now()) {
		return errorf(http.StatusForbidden, "token: expired, revoked or used up; ask for a new one")
	}
	if err := s.takeToken(w, tok.ID); err != nil {
		return err
	}
	group := tok.Group
	if req.Group != "" && req.Group != tok.Group {
		if !tok.ClientGroup {
			return errorf(http.StatusForbidden, "group: this token assigns group %q and does not let the agent choose", tok.Group)
		}
		if err := checkName("group", req.Group); err != nil {
			return err
		}
		group = req.Group
	}
	if ok, err := s.st.GroupExists(ctx, group); err != nil {
		return err
	} else if !ok {
		return errorf(http.StatusBadRequest, "group %q does not exist", group)
	}
	csr, err := pki.ParseCSR([]byte(req.CSR))
	if err != nil {
		return &httpError{code: http.StatusBadRequest, msg: "csr: " + err.Error(), err: err}
	}
	// Other identities of this machine id (F2): machine ids are
	// world-readable and listed to viewers, so claiming one proves nothing.
	// An identity is retired only by its own holder (the enrollment comes
	// over mTLS with its client certificate) or when the server already
	// asked it to enroll again (a flagged clone); any other active identity
	// stays, and the new one waits for an admin's approval.
	olds, err := s.st.AgentsByMachine(ctx, req.Facts.MachineID)
	if err != nil {
		return err
	}
	proven := s.presentedAgent(r)
	var retire, blocking []string
	for _, o := range olds {
		switch {
		case o.ID == proven || o.Status == store.AgentReenroll:
			retire = append(retire, o.ID)
		case o.Status == store.AgentActive:
			blocking = append(blocking, o.ID)
		}
	}
	id := "agt-" + randomString(10)
	now := s.now()
	certPEM, serial, err := s.tls.CA.SignAgentFor(csr, id, now, s.agentCertLifetime())
	if err != nil {
		return err
	}
	a := &store.Agent{ID: id, MachineID: req.Facts.MachineID, Hostname: req.Facts.Hostname, OS: req.Facts.OS, Arch: req.Facts.Arch,
		Group: group, CertSerial: serial, CertNotAfter: now.Add(s.agentCertLifetime()).Truncate(time.Second),
		Status: store.AgentActive, TokenID: tok.ID, EnrolledAt: now, LastSeen: now}
	if len(blocking) > 0 {
		a.Status = store.AgentPending
		a.Flag = fmt.Sprintf("machine id already enrolled as %s; enrolled without that identity's certificate: approve with `bulwark admin computers approve %s`",
			strings.Join(blocking, ", "), id)
	}
	// The token's use and the agent are stored together, with other
	// enrollments of the moment (one transaction for many: a fleet behind
	// one address enrolls at once). A token used up meanwhile stores
	// nothing, and the certificate just signed is never sent.
	if testHookBeforeEnrollStore != nil {
		testHookBeforeEnrollStore()
	}
	if _, err := s.enrolls.do(ctx, store.Enrollment{TokenID: tok.ID, At: now, Agent: a}); err != nil {
		return storeErr(err, "token")
	}
	for _, o := range retire {
		if err := s.st.SetAgentStatus(ctx, o, store.AgentRevoked, "re-enrolled as "+id); err != nil {
			return err
		}
	}
	if a.Status == store.AgentPending {
		s.log.Warn("enrollment claims the machine id of an active agent; pending an admin's approval", "agent", id, "machine_id", a.MachineID, "active", blocking, "token", tok.ID)
	}
	resp, err := s.enrollResponse(a, certPEM)
	if err != nil {
		return err
	}
	s.metrics.enrollments.Inc()
	s.log.Info("agent enrolled", "agent", id, "hostname", a.Hostname, "machine_id", a.MachineID, "group", group, "token", tok.ID)
	writeJSON(w, http.StatusCreated, resp)
	return nil
}

// testHookBeforeEnrollStore, when set by a test, runs after an enrollment's
// checks, just before it is stored.
var testHookBeforeEnrollStore func()

// writeEnrollments stores a group of enrollments in one transaction; when
// that fails (one agent id taken meanwhile aborts the transaction) each is
// stored alone, so one bad enrollment does not fail the others.
func (s *Server) writeEnrollments(ctx context.Context, group []*groupItem[store.Enrollment]) {
	es := make([]store.Enrollment, len(group))
	for i, it := range group {
		es[i] = it.v
	}
	errs, err := s.st.EnrollAgents(ctx, es)
	if err != nil && len(group) > 1 {
		for _, it := range group {
			errs, err := s.st.EnrollAgents(ctx, []store.Enrollment{it.v})
			if err == nil {
				err = errs[0]
			}
			it.err = err
		}
		return
	}
	for i, it := range group {
		it.err = err
		if err == nil {
			it.err = errs[i]
		}
	}
}

// presentedAgent is the id of the agent whose client certificate came with
// r (valid, its current serial or the one a renewal just replaced), or "".
func (s *Server) presentedAgent(r *http.Request) string {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.VerifiedChains[0]) == 0 {
		return ""
	}
	leaf := r.TLS.VerifiedChains[0][0]
	if !hasClientUse(leaf) {
		return ""
	}
	a, err := s.st.AgentIdentity(r.Context(), leaf.Subject.CommonName)
	if serial := pki.SerialString(leaf.SerialNumber); err != nil || (serial != a.CertSerial && serial != a.PrevCertSerial) || a.Status == store.AgentRevoked {
		return ""
	}
	return a.ID
}

func (s *Server) enrollResponse(a *store.Agent, certPEM []byte) (*wire.EnrollResponse, error) {
	// The first root: the agent pins its fingerprint and walks the root
	// chain from it, learning the signed vendor list on the way.
	root, err := s.site.FirstRoot()
	if err != nil {
		return nil, err
	}
	u := s.URL()
	resp := &wire.EnrollResponse{
		AgentID: a.ID, Status: a.Status, Message: a.Flag, Certificate: string(certPEM), CA: string(s.tls.CA.CertPEM), Group: a.Group,
		Site:       wire.RepoRef{Name: "site", MetadataURL: u + "/site/metadata", TargetsURL: u + "/site/targets", Root: root},
		Vendors:    []wire.RepoRef{},
		CheckinURL: u + "/agent/v1/checkin", ReportURL: u + "/agent/v1/report",
	}
	for _, rp := range s.sortedRepos() {
		rp.mu.Lock()
		vroot := rp.root
		rp.mu.Unlock()
		if vroot == nil {
			continue // not synced yet; the agent learns it at a later check-in
		}
		ri := s.repoInfo(rp)
		resp.Vendors = append(resp.Vendors, wire.RepoRef{Name: rp.name, MetadataURL: ri.MetadataURL, TargetsURL: ri.TargetsURL, Root: vroot})
	}
	return resp, nil
}

// handleVendors tells an enrolled agent every vendor repository with its
// URLs and root, so that a vendor first synced after the agent enrolled
// reaches it too. Conditional like a check-in.
func (s *Server) handleVendors(w http.ResponseWriter, r *http.Request) error {
	a, err := s.agentFromTLS(r)
	if err != nil {
		return err
	}
	if err := s.checkClone(r, a); err != nil {
		return err
	}
	resp, err := s.enrollResponse(a, nil)
	if err != nil {
		return err
	}
	b, err := json.Marshal(map[string]any{"vendors": resp.Vendors})
	if err != nil {
		return err
	}
	bh := sha256.Sum256(b)
	etag := `"` + hex.EncodeToString(bh[:16]) + `"`
	w.Header().Set("ETag", etag)
	w.Header().Set("Cache-Control", "private, no-cache")
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(append(b, '\n'))
	return nil
}

// forgetApprovals empties the check-in cache after the site repository
// changed, and tells the other replicas to empty theirs.
func (s *Server) forgetApprovals() {
	s.dropSiteCaches()
	if s.coord != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.coord.NotifySite(ctx); err != nil {
			s.log.Warn("tell replicas the site repository changed", "err", err)
		}
	}
}

// dropSiteCaches empties this replica's caches of the site repository.
func (s *Server) dropSiteCaches() {
	s.meta.purge(s.site.Dir())
	if err := s.readTrust(); err != nil {
		s.log.Warn("read the site root's vendor list", "err", err)
	}
	// The policies first: a check-in answer built after the generation
	// moves must not take a policy from before it (checkinGroup).
	s.policies.forget()
	s.ahMu.Lock()
	s.ahCache = nil
	s.ahGen++
	s.ahMu.Unlock()
}

// checkClone refuses an identity presented from a machine other than the
// one that enrolled it, and flags the agent so both machines must enroll
// again: a cloned disk image is never merged into one computer.
func (s *Server) checkClone(r *http.Request, a *store.Agent) error {
	mid := r.Header.Get(wire.MachineIDHeader)
	if !validMachineID(mid) {
		return errorf(http.StatusBadRequest, "%s header: send the machine id from /etc/machine-id", wire.MachineIDHeader)
	}
	if mid == a.MachineID {
		return nil
	}
	flag := fmt.Sprintf("identity used from machine %s and %s (cloned disk image?)", a.MachineID, mid)
	if err := s.st.SetAgentStatus(r.Context(), a.ID, store.AgentReenroll, flag); err != nil {
		return err
	}
	s.log.Warn("agent identity seen from a second machine; both must enroll again", "agent", a.ID, "enrolled_machine", a.MachineID, "other_machine", mid)
	return &httpError{code: http.StatusConflict, msg: "re-enroll: " + flag}
}

// Agent states (WSUS vocabulary).
var agentStates = map[string]bool{
	"not-applicable": true, "needed": true, "downloaded": true, "installed": true, "installed-pending-reboot": true,
	"failed": true, "superseded": true, "declined": true, "unknown": true,
}

// Report caps.
const (
	maxReportChanges  = 10000
	maxReportPackages = 50000
	maxReportRules    = 5000
)

var xccdfResults = map[string]bool{"pass": true, "fail": true, "fixed": true, "error": true, "notapplicable": true, "notchecked": true}

func shortLine(s string, max int) bool {
	return len(s) <= max && utf8.ValidString(s) && !strings.ContainsAny(s, "\x00\n\r")
}

// validateReport checks a report completely before anything is stored.
func validateReport(rq *wire.ReportRequest, now time.Time) error {
	if !batchPattern().MatchString(rq.BatchID) {
		return errorf(http.StatusBadRequest, "batch_id %q: use 1 to 128 letters, digits, '.', '_', ':' or '-'", rq.BatchID)
	}
	if len(rq.Changes) > maxReportChanges {
		return errorf(http.StatusRequestEntityTooLarge, "changes: %d in one batch, over the %d limit; send several batches", len(rq.Changes), maxReportChanges)
	}
	for i, c := range rq.Changes {
		if _, _, ok := cutKey(c.Key); !ok {
			return errorf(http.StatusBadRequest, "changes[%d].key %q: use vendor/update-id", i, c.Key)
		}
		if !agentStates[c.State] {
			return errorf(http.StatusBadRequest, "changes[%d].state %q: use one of not-applicable, needed, downloaded, installed, installed-pending-reboot, failed, superseded, declined, unknown", i, c.State)
		}
		if !shortLine(c.Reason, 1000) {
			return errorf(http.StatusBadRequest, "changes[%d].reason: at most 1000 bytes of UTF-8 on one line", i)
		}
		if c.Time.IsZero() || c.Time.After(now.Add(24*time.Hour)) || c.Time.Before(now.Add(-10*365*24*time.Hour)) {
			return errorf(http.StatusBadRequest, "changes[%d].time %s: use the RFC 3339 time of the change, not in the future", i, c.Time.Format(time.RFC3339))
		}
	}
	if inv := rq.Inventory; inv != nil {
		if !shortLine(inv.OS, 200) || !shortLine(inv.Kernel, 200) || !shortLine(inv.AgentVersion, 100) {
			return errorf(http.StatusBadRequest, "inventory: os, kernel and agent_version are short single lines")
		}
		if len(inv.Packages) > maxReportPackages {
			return errorf(http.StatusRequestEntityTooLarge, "inventory.packages: %d, over the %d limit", len(inv.Packages), maxReportPackages)
		}
		for i, p := range inv.Packages {
			if p.Name == "" || !shortLine(p.Name, 200) || !shortLine(p.Version, 200) || !shortLine(p.Arch, 32) {
				return errorf(http.StatusBadRequest, "inventory.packages[%d]: name (required), version and arch are short single lines", i)
			}
		}
		if len(inv.Lockdown) > maxReportRules {
			return errorf(http.StatusRequestEntityTooLarge, "inventory.lockdown: %d results, over the %d limit", len(inv.Lockdown), maxReportRules)
		}
		for i, l := range inv.Lockdown {
			if l.Rule == "" || !shortLine(l.Rule, 200) || !xccdfResults[l.Result] {
				return errorf(http.StatusBadRequest, "inventory.lockdown[%d]: rule is required and result is one of pass, fail, fixed, error, notapplicable, notchecked", i)
			}
		}
	}
	if rq.Lockdown != nil {
		if err := audit.Validate(rq.Lockdown, now); err != nil {
			return &httpError{code: http.StatusBadRequest, msg: err.Error(), err: err}
		}
	}
	return nil
}

// cutKey splits a report key "vendor/update-id" and says whether both
// parts are valid names.
func cutKey(key string) (vendor, id string, ok bool) {
	vendor, id, ok = strings.Cut(key, "/")
	return vendor, id, ok && catalog.CheckVendorName(vendor) == nil && updateIDPattern().MatchString(id)
}

// reportToStore turns a validated request into a store batch.
func reportToStore(rq *wire.ReportRequest, agentID string, now time.Time) (*store.Report, error) {
	rep := &store.Report{AgentID: agentID, BatchID: rq.BatchID, ReceivedAt: now, Changes: make([]store.UpdateState, 0, len(rq.Changes))}
	for _, c := range rq.Changes {
		vendor, id, _ := strings.Cut(c.Key, "/")
		rep.Changes = append(rep.Changes, store.UpdateState{Vendor: vendor, UpdateID: id, State: c.State, Detail: c.Reason, UpdatedAt: c.Time})
	}
	if rq.Inventory != nil {
		b, err := json.Marshal(rq.Inventory)
		if err != nil {
			return nil, err
		}
		rep.Inventory = b
	}
	if rq.Lockdown != nil {
		rep.Lockdown = lockdownRecord(rq.Lockdown)
		rep.Lockdown.ReceivedAt = now
	}
	return rep, nil
}

func (s *Server) handleReport(w http.ResponseWriter, r *http.Request) error {
	a, err := s.agentFromTLS(r)
	if err != nil {
		return err
	}
	if err := s.checkClone(r, a); err != nil {
		return err
	}
	var req wire.ReportRequest
	if err := decodeBody(w, r, maxReportBody, &req); err != nil {
		return err
	}
	if req.AgentID != "" && req.AgentID != a.ID {
		s.log.Warn("agent posted a report for another agent", "agent", a.ID, "claimed", req.AgentID)
		return errorf(http.StatusForbidden, "agent_id %q is not the agent of this client certificate", req.AgentID)
	}
	now := s.now()
	if err := validateReport(&req, now); err != nil {
		return err
	}
	if err := s.checkKnownUpdates(r.Context(), req.Changes); err != nil {
		return err
	}
	rep, err := reportToStore(&req, a.ID, now)
	if err != nil {
		return err
	}
	applied, err := s.ingest.Apply(r.Context(), rep)
	if err != nil {
		return err
	}
	outcome := "applied"
	if !applied {
		outcome = "duplicate"
	}
	s.metrics.reports.WithLabelValues(outcome).Inc()
	writeJSON(w, http.StatusOK, map[string]any{"batch_id": req.BatchID, "applied": applied})
	return nil
}
