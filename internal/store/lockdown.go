package store

import "time"

// LockdownStatus is a computer's last reported audit of its lockdown
// profile: the score, the counts, and every rule that is not passing.
type LockdownStatus struct {
	AgentID       string         `json:"computer"`
	Hostname      string         `json:"hostname,omitempty"`
	Group         string         `json:"group,omitempty"`
	Profile       string         `json:"profile"`
	Source        string         `json:"source"` // policy, config or update
	Score         float64        `json:"score"`
	Pass          int            `json:"pass"`
	Fail          int            `json:"fail"`
	Waived        int            `json:"waived"`
	Errors        int            `json:"errors"`
	NotApplicable int            `json:"notapplicable"`
	Drift         int            `json:"drift"`
	Error         string         `json:"error,omitempty"`
	AuditedAt     time.Time      `json:"audited_at"`
	AppliedAt     *time.Time     `json:"applied_at,omitempty"`
	ReceivedAt    time.Time      `json:"received_at"`
	Rules         []LockdownRule `json:"rules,omitempty"` // failing, in error or waived
}

// LockdownRule is one rule that is not passing on a computer (or, in a
// group's view, on Computers of its computers).
type LockdownRule struct {
	ID          string   `json:"id"`
	Title       string   `json:"title"`
	Severity    string   `json:"severity"`
	Result      string   `json:"result"` // fail, error or waived
	Drift       bool     `json:"drift,omitempty"`
	CIS         []string `json:"cis,omitempty"`
	SSG         []string `json:"ssg,omitempty"`
	Waiver      string   `json:"waiver,omitempty"`
	WaivedUntil string   `json:"waived_until,omitempty"`
	Computers   int      `json:"computers,omitempty"` // group view: how many computers
}

// GroupLockdown is a group's lockdown compliance: how many computers
// reported an audit, how many pass every rule they do not waive, the
// scores, and the rules failing on most computers.
type GroupLockdown struct {
	Group     string  `json:"group"`
	Computers int     `json:"computers"` // in the group
	Reporting int     `json:"reporting"` // with an audit reported
	Compliant int     `json:"compliant"` // reporting, nothing failing or in error
	Drifted   int     `json:"drifted"`   // reporting drift since their last apply
	AvgScore  float64 `json:"avg_score"`
	MinScore  float64 `json:"min_score"`
	// Rules not passing, most computers first (waived ones separately:
	// Result waived).
	Rules []LockdownRule `json:"rules"`
	// Members are the reporting computers, lowest score first, without
	// their rules.
	Members []LockdownStatus `json:"members"`
}
