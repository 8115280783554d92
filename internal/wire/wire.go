// Package wire holds the JSON types the agent and the update server
// exchange on the agent API (/agent/v1/…): one definition for both sides,
// so a field added here reaches the agent and the server at once. It holds
// no behaviour: the server validates what it receives (internal/server,
// agentapi.go), the agent checks what it is given (internal/agent).
//
// Compatibility: agents and servers of different versions talk to each
// other, so add fields (with omitempty where an old peer would send
// nothing) and never rename or retype one.
package wire

import (
	"time"

	"github.com/bulwarkhq/bulwark/internal/policy"
)

// MachineIDHeader carries /etc/machine-id on every agent request after
// enrollment, so that one identity used from two machines (a cloned disk
// image) is noticed.
const MachineIDHeader = "Bulwark-Machine-Id"

// Facts describe the machine an agent runs on, sent at enrollment.
type Facts struct {
	MachineID string `json:"machine_id"` // /etc/machine-id
	Hostname  string `json:"hostname"`
	OS        string `json:"os"` // e.g. "debian 12"
	Arch      string `json:"arch"`
}

// EnrollRequest is what an agent sends once, with an enrollment token
// (POST /agent/v1/enroll).
type EnrollRequest struct {
	Token string `json:"token"`
	CSR   string `json:"csr"` // PEM certificate signing request (ECDSA P-256/P-384 or Ed25519)
	Facts Facts  `json:"facts"`
	Group string `json:"group,omitempty"` // client-side targeting, when the token allows it
}

// RepoRef tells an agent where a repository is and the root to trust.
type RepoRef struct {
	Name        string `json:"name"`
	MetadataURL string `json:"metadata_url"`
	TargetsURL  string `json:"targets_url"`
	Root        []byte `json:"root"` // root metadata bytes (base64 in JSON)
}

// EnrollResponse is everything an enrolled agent needs (the answer to an
// enrollment; GET /agent/v1/vendors answers the same shape).
type EnrollResponse struct {
	AgentID string `json:"agent_id"`
	// Status is active, or pending when the machine id belongs to an active
	// agent and the enrollment did not prove to be it: the certificate is
	// refused until an admin approves (Message says how).
	Status      string    `json:"status,omitempty"`
	Message     string    `json:"message,omitempty"`
	Certificate string    `json:"certificate"` // PEM client certificate
	CA          string    `json:"ca"`          // PEM site CA
	Group       string    `json:"group"`
	Site        RepoRef   `json:"site"`
	Vendors     []RepoRef `json:"vendors"`
	CheckinURL  string    `json:"checkin_url"`
	ReportURL   string    `json:"report_url"`
}

// VendorsResponse is the part of GET /agent/v1/vendors the agent reads.
type VendorsResponse struct {
	Vendors []RepoRef `json:"vendors"`
}

// CheckinResponse is what an agent learns at each check-in
// (GET /agent/v1/checkin). It changes only when the agent's group, status
// or its group's signed approvals change, so an unchanged check-in is
// answered 304 Not Modified.
type CheckinResponse struct {
	AgentID       string   `json:"agent_id"`
	Group         string   `json:"group"`
	Approvals     string   `json:"approvals"`      // site repository target path
	ApprovalsHash string   `json:"approvals_hash"` // sha256 of the signed document
	Vendors       []string `json:"vendors"`
	// Policy is the central policy of the agent's group (absent: none);
	// a change changes the ETag, so the next check-in delivers it.
	Policy *policy.Group `json:"policy,omitempty"`
}

// ReportRequest is one batch of an agent's events, delivered at least once
// (POST /agent/v1/report).
type ReportRequest struct {
	AgentID   string        `json:"agent_id,omitempty"` // when present, must be the certificate's agent
	BatchID   string        `json:"batch_id"`
	Changes   []StateChange `json:"changes"`
	Inventory *Inventory    `json:"inventory,omitempty"`
	// Lockdown is the agent's last audit of its lockdown profile, sent
	// once after each full cycle (internal/lockdown/audit checks it).
	Lockdown *LockdownAudit `json:"lockdown,omitempty"`
}

// StateChange is one update's new state on the agent (the agent's queued
// event).
type StateChange struct {
	Seq      int64     `json:"seq,omitempty"`
	Key      string    `json:"key"` // vendor/id
	State    string    `json:"state"`
	Reason   string    `json:"reason,omitempty"`
	Revision int       `json:"revision,omitempty"`
	Time     time.Time `json:"time"`
}

// Inventory is what is installed on the machine.
type Inventory struct {
	OS           string           `json:"os,omitempty"`
	Kernel       string           `json:"kernel,omitempty"`
	AgentVersion string           `json:"agent_version,omitempty"`
	Packages     []Package        `json:"packages,omitempty"`
	Lockdown     []LockdownResult `json:"lockdown,omitempty"`
}

// Package is one installed package.
type Package struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Arch    string `json:"arch,omitempty"`
}

// LockdownResult is one hardening rule's result (XCCDF vocabulary).
type LockdownResult struct {
	Rule   string `json:"rule"`
	Result string `json:"result"`
}

// RenewRequest asks for a new client certificate for a new key, over mutual
// TLS with the agent's current (unexpired) certificate
// (POST /agent/v1/renew).
type RenewRequest struct {
	CSR string `json:"csr"` // PEM certificate request for the new key
}

// RenewResponse is the renewed certificate.
type RenewResponse struct {
	Certificate string    `json:"certificate"` // PEM, signed by the site CA
	NotAfter    time.Time `json:"not_after"`
}

// LockdownAudit is an agent's audit of its lockdown profile: the profile,
// why the agent audits it, the score, the counts, and every rule that is
// not passing (failing, in error, or waived) with its references, so the
// server can show what to fix without knowing the rules itself.
type LockdownAudit struct {
	Profile string `json:"profile"`
	// Source says why the agent audits this profile: policy (its group's
	// policy keeps it applied), config (agent.yaml names it) or update
	// (a lockdown update it installed applied it).
	Source        string     `json:"source"`
	AuditedAt     time.Time  `json:"audited_at"`
	AppliedAt     *time.Time `json:"applied_at,omitempty"` // the agent's last apply of this profile
	Score         float64    `json:"score"`                // 0 to 100, severity-weighted; waived counts as passing
	Pass          int        `json:"pass"`
	Fail          int        `json:"fail"` // not waived
	Waived        int        `json:"waived"`
	Errors        int        `json:"errors"`
	NotApplicable int        `json:"notapplicable"`
	// Drift counts the failing rules that passed after the last apply.
	Drift int                 `json:"drift"`
	Rules []LockdownAuditRule `json:"rules"`
	// Error says why the audit could not run (an unknown profile, a bad
	// waiver) or an apply failed.
	Error string `json:"error,omitempty"`
}

// LockdownAuditRule is one rule that is not passing.
type LockdownAuditRule struct {
	ID       string `json:"id"`
	Title    string `json:"title"`
	Severity string `json:"severity"`
	Result   string `json:"result"` // fail, error or waived
	// Drift: the rule passed after the last apply and fails now.
	Drift       bool     `json:"drift,omitempty"`
	CIS         []string `json:"cis,omitempty"`
	SSG         []string `json:"ssg,omitempty"`
	Waiver      string   `json:"waiver,omitempty"`       // the waiver's reason
	WaivedUntil string   `json:"waived_until,omitempty"` // YYYY-MM-DD
}
