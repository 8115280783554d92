package sqlstore

// RefreshComplianceSQL is the statement a report runs to refresh its
// computer's compliance figures ($1: the computer's id) and last-seen time
// ($2, unix milliseconds).
const RefreshComplianceSQL = setComplianceSeen
