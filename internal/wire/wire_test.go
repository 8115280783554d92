package wire

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/policy"
)

// TestFieldNames pins the JSON names of every type: agents and servers of
// different versions talk to each other, so a renamed field is a break.
func TestFieldNames(t *testing.T) {
	at := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	ref := RepoRef{Name: "site", MetadataURL: "m", TargetsURL: "t", Root: []byte("{}")}
	tests := []struct {
		name string
		v    any
		want string
	}{
		{"enroll request", EnrollRequest{Token: "bwe_x", CSR: "c", Facts: Facts{MachineID: "id", Hostname: "h", OS: "debian 12", Arch: "amd64"}, Group: "g"},
			`{"token":"bwe_x","csr":"c","facts":{"machine_id":"id","hostname":"h","os":"debian 12","arch":"amd64"},"group":"g"}`},
		{"enroll response", EnrollResponse{AgentID: "a", Status: "active", Message: "m", Certificate: "c", CA: "ca", Group: "g", Site: ref, Vendors: []RepoRef{}, CheckinURL: "ci", ReportURL: "r"},
			`{"agent_id":"a","status":"active","message":"m","certificate":"c","ca":"ca","group":"g","site":{"name":"site","metadata_url":"m","targets_url":"t","root":"e30="},"vendors":[],"checkin_url":"ci","report_url":"r"}`},
		{"vendors", VendorsResponse{Vendors: []RepoRef{ref}},
			`{"vendors":[{"name":"site","metadata_url":"m","targets_url":"t","root":"e30="}]}`},
		{"check-in", CheckinResponse{AgentID: "a", Group: "g", Approvals: "p", ApprovalsHash: "h", Vendors: []string{"debian"}},
			`{"agent_id":"a","group":"g","approvals":"p","approvals_hash":"h","vendors":["debian"]}`},
		{"check-in with a group policy", CheckinResponse{AgentID: "a", Group: "g", Approvals: "p", ApprovalsHash: "h", Vendors: []string{},
			Policy: &policy.Group{Mode: "auto", AllowLocal: []string{"bandwidth_limit"}}},
			`{"agent_id":"a","group":"g","approvals":"p","approvals_hash":"h","vendors":[],"policy":{"mode":"auto","allow_local":["bandwidth_limit"]}}`},
		{"report", ReportRequest{AgentID: "a", BatchID: "b", Changes: []StateChange{{Seq: 1, Key: "v/u", State: "failed", Reason: "r", Revision: 2, Time: at}},
			Inventory: &Inventory{OS: "debian 12", Kernel: "k", AgentVersion: "v", Packages: []Package{{Name: "n", Version: "1", Arch: "amd64"}}, Lockdown: []LockdownResult{{Rule: "r", Result: "pass"}}}},
			`{"agent_id":"a","batch_id":"b","changes":[{"seq":1,"key":"v/u","state":"failed","reason":"r","revision":2,"time":"2026-11-30T09:00:00Z"}],"inventory":{"os":"debian 12","kernel":"k","agent_version":"v","packages":[{"name":"n","version":"1","arch":"amd64"}],"lockdown":[{"rule":"r","result":"pass"}]}}`},
		{"empty report", ReportRequest{BatchID: "b", Changes: []StateChange{}}, `{"batch_id":"b","changes":[]}`},
		{"lockdown audit", ReportRequest{BatchID: "b", Changes: []StateChange{}, Lockdown: &LockdownAudit{Profile: "p", Source: "policy", AuditedAt: at, AppliedAt: &at,
			Score: 97.5, Pass: 1, Fail: 1, Waived: 1, Errors: 0, NotApplicable: 2, Drift: 1, Error: "e",
			Rules: []LockdownAuditRule{{ID: "r", Title: "t", Severity: "high", Result: "fail", Drift: true, CIS: []string{"1.1"}, SSG: []string{"s"}, Waiver: "w", WaivedUntil: "2027-01-01"}}}},
			`{"batch_id":"b","changes":[],"lockdown":{"profile":"p","source":"policy","audited_at":"2026-11-30T09:00:00Z","applied_at":"2026-11-30T09:00:00Z","score":97.5,"pass":1,"fail":1,"waived":1,"errors":0,"notapplicable":2,"drift":1,"rules":[{"id":"r","title":"t","severity":"high","result":"fail","drift":true,"cis":["1.1"],"ssg":["s"],"waiver":"w","waived_until":"2027-01-01"}],"error":"e"}}`},
		{"renew", RenewRequest{CSR: "c"}, `{"csr":"c"}`},
		{"renewed", RenewResponse{Certificate: "c", NotAfter: at}, `{"certificate":"c","not_after":"2026-11-30T09:00:00Z"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(tt.v)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tt.want {
				t.Errorf("JSON changed:\n got %s\nwant %s", b, tt.want)
			}
		})
	}
}
