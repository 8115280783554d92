package store

import "time"

// ApprovalRule approves matching updates for a group by itself. Empty
// match fields match everything; MinSeverity matches that severity and
// above. Without After, an update is approved Delay after the server
// indexed it; with After (rings), once it has been approved for install in
// group After for Delay, has results there and stayed under that group's
// halt threshold.
type ApprovalRule struct {
	ID             string        `json:"id"`
	Group          string        `json:"group"`
	Vendor         string        `json:"vendor,omitempty"`
	Product        string        `json:"product,omitempty"`
	Classification string        `json:"classification,omitempty"`
	MinSeverity    string        `json:"min_severity,omitempty"`
	After          string        `json:"after,omitempty"`
	Delay          time.Duration `json:"delay"`
	DeadlineIn     time.Duration `json:"deadline_in,omitempty"` // 0: no deadline
	Rollout        int           `json:"rollout"`
	CreatedBy      string        `json:"created_by,omitempty"`
	CreatedAt      time.Time     `json:"created_at"`
}

// RolloutStats counts the results of one install approval among the
// computers of its group; after a resume, only results reported since.
type RolloutStats struct {
	Group      string    `json:"group"`
	Vendor     string    `json:"vendor"`
	UpdateID   string    `json:"id"`
	Rollout    int       `json:"rollout"`
	ApprovedAt time.Time `json:"approved_at"`
	ApprovedBy string    `json:"approved_by,omitempty"`
	Installed  int       `json:"installed"` // installed or installed-pending-reboot
	Failed     int       `json:"failed"`
}

// RolloutHalt is a rollout that halted itself, or was resumed.
type RolloutHalt struct {
	Group     string    `json:"group"`
	Vendor    string    `json:"vendor"`
	UpdateID  string    `json:"id"`
	Halted    bool      `json:"halted"`
	Reason    string    `json:"reason,omitempty"`
	Failed    int       `json:"failed"`  // at the change
	Results   int       `json:"results"` // at the change
	ChangedBy string    `json:"changed_by,omitempty"`
	ChangedAt time.Time `json:"changed_at"`
}

// HaltThreshold is when a group's rollouts halt: more than FailedPercent
// of at least MinResults results failed.
type HaltThreshold struct {
	Group         string `json:"group"`
	FailedPercent int    `json:"failed_percent"`
	MinResults    int    `json:"min_results"`
}

// FailedComputer is one computer whose install of an update failed.
type FailedComputer struct {
	ID       string    `json:"id"`
	Hostname string    `json:"hostname"`
	Reason   string    `json:"reason,omitempty"`
	At       time.Time `json:"at"`
}
