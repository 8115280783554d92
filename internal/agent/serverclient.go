package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/bulwarkhq/bulwark/internal/facts"
	"github.com/bulwarkhq/bulwark/internal/wire"
)

// ServerClient is the agent's connection to its update server: check-ins and
// reports over mutual TLS, every request carrying the machine id.
type ServerClient struct {
	hc        *http.Client
	e         *Enrollment
	machineID string

	mu   sync.Mutex
	etag string
	last wire.CheckinResponse
}

// NewServerClient uses hc, which must present the agent's client
// certificate and trust only the site CA (Enrollment.TLSConfig).
func NewServerClient(hc *http.Client, e *Enrollment, machineID string) *ServerClient {
	return &ServerClient{hc: hc, e: e, machineID: machineID}
}

// CheckIn asks the server whether anything changed for this agent. An
// unchanged answer is a 304 to a conditional request: one small round trip.
func (c *ServerClient) CheckIn(ctx context.Context) (info wire.CheckinResponse, changed bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.e.CheckinURL, nil)
	if err != nil {
		return info, false, err
	}
	req.Header.Set(wire.MachineIDHeader, c.machineID)
	c.mu.Lock()
	if c.etag != "" {
		req.Header.Set("If-None-Match", c.etag)
	}
	c.mu.Unlock()
	resp, err := c.hc.Do(req)
	if err != nil {
		return info, false, fmt.Errorf("check in: %w", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	c.mu.Lock()
	defer c.mu.Unlock()
	switch resp.StatusCode {
	case http.StatusNotModified:
		return c.last, false, nil
	case http.StatusOK:
		if err := json.Unmarshal(b, &info); err != nil {
			return info, false, fmt.Errorf("check in: the server's answer does not parse: %w", err)
		}
		c.etag, c.last = resp.Header.Get("ETag"), info
		return info, true, nil
	}
	return info, false, fmt.Errorf("check in: %s", serverMessage(resp.StatusCode, b))
}

// ETag is the tag of the last check-in answer (empty before one).
func (c *ServerClient) ETag() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.etag
}

// setETag makes the next check-in conditional on an answer an earlier
// process received (checkin.json).
func (c *ServerClient) setETag(etag string) {
	c.mu.Lock()
	c.etag = etag
	c.mu.Unlock()
}

// Vendors asks the server for every vendor repository it serves, with the
// root to trust for each: vendors synced after this agent enrolled.
func (c *ServerClient) Vendors(ctx context.Context) ([]wire.RepoRef, error) {
	u := strings.TrimSuffix(c.e.CheckinURL, "/checkin") + "/vendors"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set(wire.MachineIDHeader, c.machineID)
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("vendors: %w", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("vendors: %s", serverMessage(resp.StatusCode, b))
	}
	var v wire.VendorsResponse
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("vendors: the server's answer does not parse: %w", err)
	}
	return v.Vendors, nil
}

// InventoryOf turns the machine's facts into a report inventory.
func InventoryOf(inv facts.Inventory, agentVersion string) wire.Inventory {
	w := wire.Inventory{OS: strings.TrimSpace(inv.OSID + " " + inv.OSVersionID), Kernel: inv.Kernel, AgentVersion: agentVersion}
	for _, p := range inv.Packages {
		w.Packages = append(w.Packages, wire.Package{Name: p.Name, Version: p.Version, Arch: p.Arch})
	}
	return w
}

// Report implements Reporter. The batch id names the agent and the range of
// sequence numbers, so a batch sent again after a lost answer is stored
// once.
func (c *ServerClient) Report(ctx context.Context, r Report) (int64, error) {
	rq := wire.ReportRequest{AgentID: r.AgentID, Changes: make([]wire.StateChange, 0, len(r.Events)), Lockdown: r.Lockdown}
	for _, e := range r.Events {
		rq.Changes = append(rq.Changes, wire.StateChange{Seq: e.Seq, Key: e.Key, State: string(e.State), Reason: e.Reason, Revision: e.Revision, Time: e.Time})
	}
	if inv, ok := r.Inventory.(wire.Inventory); ok {
		rq.Inventory = &inv
	}
	var acked int64
	if n := len(r.Events); n > 0 {
		acked = r.Events[n-1].Seq
		rq.BatchID = fmt.Sprintf("%s:%d-%d", r.AgentID, r.Events[0].Seq, acked)
	} else {
		rq.BatchID = fmt.Sprintf("%s:hb:%d", r.AgentID, time.Now().UnixNano())
	}
	body, err := json.Marshal(rq)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.e.ReportURL, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(wire.MachineIDHeader, c.machineID)
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("%s", serverMessage(resp.StatusCode, b))
	}
	return acked, nil
}

// CloseIdleConnections closes the kept-alive connections to the server (and
// the mirrors the same client fetches from), as the agent does before it
// idles for hours.
func (c *ServerClient) CloseIdleConnections() { c.hc.CloseIdleConnections() }

var _ Reporter = (*ServerClient)(nil)
