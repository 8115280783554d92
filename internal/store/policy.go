package store

import (
	"time"

	"github.com/bulwarkhq/bulwark/internal/policy"
)

// GroupPolicy is a computer group's central policy with who changed it
// last and when.
type GroupPolicy struct {
	Group     string       `json:"group"`
	Policy    policy.Group `json:"policy"`
	UpdatedBy string       `json:"updated_by,omitempty"`
	UpdatedAt time.Time    `json:"updated_at,omitzero"`
}
