package sqlstore

// RefreshComplianceSQL is the statement a report runs to refresh its
// computer's compliance figures ($1: the computer's id).
const RefreshComplianceSQL = setCompliance + ` WHERE id = $1`
