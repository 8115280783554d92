package server

import (
	"bytes"
	"context"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/bulwarkhq/bulwark/internal/policy"
	"github.com/bulwarkhq/bulwark/internal/store"
	"github.com/bulwarkhq/bulwark/internal/tuf"
	"github.com/bulwarkhq/bulwark/internal/wire"
)

// TestOpenAPIContract checks every documented operation's live answers
// against openapi.json with kin-openapi: the status must be documented for
// the route and the body must match its schema. Every documented operation
// must be exercised, so the document cannot drift from the code.
func TestOpenAPIContract(t *testing.T) {
	ctx := context.Background()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(openAPI)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(ctx); err != nil {
		t.Fatalf("openapi.json is not a valid OpenAPI document: %v", err)
	}
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	v := newVendorRepo(t, "example")
	v.publish(t, "BW-1", "critical", map[string]string{"a.deb": "aaaa"})
	ts := startServer(t, Config{Vendors: []HostedVendor{{Name: "example", Dir: v.dir}}})
	if _, err := ts.SyncAll(ctx, "", "manual"); err != nil {
		t.Fatal(err)
	}
	admin := ts.first.AdminToken
	seen := map[string]bool{}
	validate := func(method, path string, code int, body []byte, hdr http.Header) error {
		req, _ := http.NewRequest(method, "https://x"+path, nil)
		route, params, err := router.FindRoute(req)
		if err != nil {
			return err
		}
		seen[method+" "+route.Path] = true
		return openapi3filter.ValidateResponse(ctx, &openapi3filter.ResponseValidationInput{
			RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
				Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}},
			Status: code, Header: hdr, Body: io.NopCloser(bytes.NewReader(body)),
			Options: &openapi3filter.Options{IncludeResponseStatus: true},
		})
	}
	check := func(method, path string, code int, body []byte, hdr http.Header) {
		t.Helper()
		if err := validate(method, path, code, body, hdr); err != nil {
			t.Errorf("%s %s answered %d, which openapi.json does not allow: %v\n%s", method, path, code, err, body)
		}
	}
	// The check itself refuses what the document does not allow.
	js := http.Header{"Content-Type": {"application/json"}}
	for _, bad := range []struct {
		code int
		body string
	}{{200, `{"groups":[],"extra":1}`}, {200, `{"groups":[{"name":1}]}`}, {418, `{}`}} {
		if validate("GET", "/api/v1/groups", bad.code, []byte(bad.body), js) == nil {
			t.Fatalf("the contract check accepts %d %s", bad.code, bad.body)
		}
	}
	call := func(method, path, token string, body any, want int) []byte {
		t.Helper()
		code, b, hdr := ts.do(ts.client, method, path, token, body)
		if code != want {
			t.Errorf("%s %s: %d %s, want %d", method, path, code, b, want)
		}
		check(method, path, code, b, hdr)
		return b
	}
	agentCall := func(a *testAgent, method, path string, body any, hdr map[string]string, want int) []byte {
		t.Helper()
		code, b, h := ts.agentDo(a, a.client, method, path, body, hdr)
		if code != want {
			t.Errorf("%s %s: %d %s, want %d", method, path, code, b, want)
		}
		check(method, path, code, b, h)
		return b
	}

	call("GET", "/api/v1/openapi.json", "", nil, 200)
	call("GET", "/api/v1/status", admin, nil, 200)
	call("GET", "/api/v1/status", "", nil, 401)
	call("GET", "/api/v1/repositories", admin, nil, 200)
	call("POST", "/api/v1/groups", admin, GroupRequest{Name: "web"}, 201)
	call("POST", "/api/v1/groups", admin, GroupRequest{Name: "web"}, 409)
	call("POST", "/api/v1/groups", admin, GroupRequest{Name: "bad name"}, 400)
	call("GET", "/api/v1/groups", admin, nil, 200)
	viewer := ts.newToken(TokenRequest{Kind: "api", Role: "viewer"})
	call("POST", "/api/v1/groups", viewer, GroupRequest{Name: "ops"}, 403)
	call("GET", "/api/v1/groups/web/approvals", admin, nil, 200)
	call("GET", "/api/v1/groups/nope/approvals", admin, nil, 404)
	call("PUT", "/api/v1/groups/web/approvals/example/BW-1", admin, ApprovalRequest{Action: "install", Rollout: 50}, 200)
	call("PUT", "/api/v1/groups/web/approvals/example/BW-9", admin, ApprovalRequest{Action: "install"}, 404)
	call("DELETE", "/api/v1/groups/web/approvals/example/BW-1", admin, nil, 204)
	call("DELETE", "/api/v1/groups/web/approvals/example/BW-1", admin, nil, 404)
	call("GET", "/api/v1/updates", admin, nil, 200)
	call("GET", "/api/v1/updates?severity=critical&vendor=example", admin, nil, 200)
	call("GET", "/api/v1/updates?severity=huge", admin, nil, 400)
	call("GET", "/api/v1/updates?colour=red", admin, nil, 400)
	call("GET", "/api/v1/updates?cve=CVE-2026-0001&needed_min=1", admin, nil, 200)
	call("GET", "/api/v1/updates?cve=2026-0001", admin, nil, 400)
	call("GET", "/api/v1/updates?needed_min=-1", admin, nil, 400)
	call("GET", "/api/v1/computers?missing=sometimes", admin, nil, 400)
	call("GET", "/api/v1/computers?group=nope", admin, nil, 404)

	tb := call("POST", "/api/v1/tokens", admin, TokenRequest{Kind: "enroll", Group: "web"}, 201)
	call("POST", "/api/v1/tokens", admin, TokenRequest{Kind: "enroll", Group: "nope"}, 404)
	var tok TokenResponse
	json.Unmarshal(tb, &tok)
	call("GET", "/api/v1/tokens", admin, nil, 200)
	a := ts.enroll(tok.Token, machineA, "")
	code, b, hdr := ts.do(ts.client, "POST", "/agent/v1/enroll", "", wire.EnrollRequest{Token: "bwe_nope", CSR: csrFor(t, mustKey(t)),
		Facts: wire.Facts{MachineID: machineB, Hostname: "h", OS: "debian 12", Arch: "amd64"}})
	check("POST", "/agent/v1/enroll", code, b, hdr)
	b2 := ts.enroll(ts.newToken(TokenRequest{Kind: "enroll", Group: "web"}), machineB, "")
	_ = b2
	// A real enrollment's answer, checked too.
	key := mustKey(t)
	code, b, hdr = ts.do(ts.client, "POST", "/agent/v1/enroll", "", wire.EnrollRequest{Token: ts.newToken(TokenRequest{Kind: "enroll"}), CSR: csrFor(t, key),
		Facts: wire.Facts{MachineID: "99998888777766665555444433332222", Hostname: "h", OS: "debian 12", Arch: "amd64"}})
	if code != 201 {
		t.Fatalf("enroll: %d %s", code, b)
	}
	check("POST", "/agent/v1/enroll", code, b, hdr)
	agentCall(a, "GET", "/agent/v1/checkin", nil, nil, 200)
	agentCall(a, "GET", "/agent/v1/vendors", nil, nil, 200)
	agentCall(a, "POST", "/agent/v1/report", wire.ReportRequest{BatchID: "b1", Changes: []wire.StateChange{{Key: "example/BW-1", State: "needed", Time: time.Now().UTC()}}}, nil, 200)
	agentCall(a, "POST", "/agent/v1/report", wire.ReportRequest{BatchID: "bad batch"}, nil, 400)
	call("GET", "/api/v1/computers/"+a.resp.AgentID+"/lockdown", admin, nil, 404) // no audit reported yet
	agentCall(a, "POST", "/agent/v1/report", wire.ReportRequest{BatchID: "b2", Changes: []wire.StateChange{}, Lockdown: testCompliance(time.Now())}, nil, 200)
	agentCall(a, "POST", "/agent/v1/report", wire.ReportRequest{BatchID: "b3", Changes: []wire.StateChange{}, Lockdown: &wire.LockdownAudit{Profile: "Bad Name"}}, nil, 400)
	call("GET", "/api/v1/computers/"+a.resp.AgentID+"/lockdown", viewer, nil, 200)
	call("GET", "/api/v1/computers/agt-nope/lockdown", admin, nil, 404)
	call("GET", "/api/v1/groups/web/lockdown", viewer, nil, 200)
	call("GET", "/api/v1/groups/nope/lockdown", admin, nil, 404)
	call("GET", "/api/v1/groups/web/lockdown", "", nil, 401)
	agentCall(a, "POST", "/agent/v1/renew", wire.RenewRequest{CSR: "not a CSR"}, nil, 400)
	agentCall(a, "POST", "/agent/v1/renew", wire.RenewRequest{CSR: csrFor(t, mustKey(t))}, nil, 200)

	call("GET", "/api/v1/computers", admin, nil, 200)
	// Pages by cursor: three computers, two a page.
	var page struct {
		Computers []struct{ ID string }
		Next      string
	}
	json.Unmarshal(call("GET", "/api/v1/computers?limit=2", admin, nil, 200), &page)
	first := page.Computers
	if len(first) != 2 || page.Next == "" {
		t.Fatalf("first page: %+v", page)
	}
	page.Next, page.Computers = "", nil
	json.Unmarshal(call("GET", "/api/v1/computers?limit=2&after="+url.QueryEscape(func() string {
		var p struct{ Next string }
		json.Unmarshal(call("GET", "/api/v1/computers?limit=2", admin, nil, 200), &p)
		return p.Next
	}()), admin, nil, 200), &page)
	if len(page.Computers) != 1 || page.Next != "" || page.Computers[0].ID == first[0].ID || page.Computers[0].ID == first[1].ID {
		t.Fatalf("second page: %+v after %+v", page, first)
	}
	call("GET", "/api/v1/computers/"+a.resp.AgentID, admin, nil, 200)
	call("GET", "/api/v1/computers/agt-nope", admin, nil, 404)
	// A claim on an enrolled machine id is pending until approved (F2).
	claim := ts.enroll(ts.newToken(TokenRequest{Kind: "enroll"}), "99998888777766665555444433332222", "")
	call("POST", "/api/v1/computers/"+claim.resp.AgentID+"/approve", admin, nil, 204)
	call("POST", "/api/v1/computers/"+claim.resp.AgentID+"/approve", admin, nil, 409)
	call("POST", "/api/v1/computers/agt-nope/approve", admin, nil, 404)
	call("POST", "/api/v1/groups/web/computers", admin, MoveRequest{Computers: []string{"agt-nope"}}, 404)
	call("POST", "/api/v1/groups/web/computers", admin, MoveRequest{Computers: []string{a.resp.AgentID}}, 200)
	call("POST", "/api/v1/computers/"+b2.resp.AgentID+"/revoke", admin, nil, 204)
	call("POST", "/api/v1/computers/agt-nope/revoke", admin, nil, 404)
	call("DELETE", "/api/v1/computers/"+b2.resp.AgentID, admin, nil, 204)
	call("DELETE", "/api/v1/computers/"+b2.resp.AgentID, admin, nil, 404)
	call("DELETE", "/api/v1/tokens/"+tok.Info.ID, admin, nil, 204)
	call("DELETE", "/api/v1/tokens/tok-nope", admin, nil, 404)
	call("GET", "/api/v1/sync", admin, nil, 200)
	call("GET", "/api/v1/sync/progress", viewer, nil, 200)
	// A sync in flight, as the mirror reports it, matches the schema too.
	ts.live.start(&store.SyncRun{ID: 99, Vendor: "example", StartedAt: time.Now()})
	ts.live.set(99, tuf.MirrorProgress{Phase: "targets", UpdatesTotal: 3, UpdatesDone: 1, PayloadsTotal: 2, PayloadsDone: 1, BytesTotal: 10, BytesDone: 4})
	if b := call("GET", "/api/v1/sync/progress", viewer, nil, 200); !strings.Contains(string(b), `"bytes_done": 4`) {
		t.Errorf("sync progress: %s", b)
	}
	ts.live.finish(99)
	call("GET", "/api/v1/sync/progress", "", nil, 401)
	call("GET", "/api/v1/site/root", viewer, nil, 200)
	call("PUT", "/api/v1/site/root", viewer, SiteRootRequest{Root: []byte("{}")}, 403)
	call("PUT", "/api/v1/site/root", admin, SiteRootRequest{Root: []byte("{}")}, 400) // not a root signed by the site root key
	call("POST", "/api/v1/sync?wait=true", admin, SyncRequest{Vendor: "example"}, 200)
	call("POST", "/api/v1/sync", admin, SyncRequest{Vendor: "nope"}, 404)
	call("POST", "/api/v1/users", admin, UserRequest{Name: "alice", Role: "viewer", Password: "correct horse battery"}, 201)
	call("POST", "/api/v1/users", admin, UserRequest{Name: "alice", Role: "viewer", Password: "correct horse battery"}, 409)
	call("GET", "/api/v1/users", admin, nil, 200)
	call("GET", "/api/v1/users?limit=1", admin, nil, 200)
	call("GET", "/api/v1/users?after=!!", admin, nil, 400)
	call("PATCH", "/api/v1/users/alice", admin, UserChange{Role: "approver"}, 200)
	call("PATCH", "/api/v1/users/alice", admin, UserChange{Role: "root"}, 400)
	call("PATCH", "/api/v1/users/admin", admin, UserChange{Role: "viewer"}, 409)
	call("PATCH", "/api/v1/users/nobody", admin, UserChange{Role: "viewer"}, 404)
	call("PATCH", "/api/v1/users/alice", viewer, UserChange{Role: "admin"}, 403)
	call("POST", "/api/v1/users/alice/password", admin, nil, 200)
	call("POST", "/api/v1/users/alice/password", admin, PasswordReset{Password: "short"}, 400)
	call("POST", "/api/v1/users/nobody/password", admin, nil, 404)
	call("GET", "/api/v1/groups?limit=1", admin, nil, 200)
	call("GET", "/api/v1/groups?limit=0", admin, nil, 400)
	call("GET", "/api/v1/groups/web/approvals?limit=1", admin, nil, 200)
	call("GET", "/api/v1/updates?limit=1", admin, nil, 200)
	call("GET", "/api/v1/tokens?limit=1", admin, nil, 200)
	call("GET", "/api/v1/tokens?limit=x", admin, nil, 400)
	call("GET", "/api/v1/sync?limit=1", admin, nil, 200)
	call("GET", "/api/v1/sync?before=x", admin, nil, 400)
	call("GET", "/api/v1/audit?limit=2", admin, nil, 200)
	call("GET", "/api/v1/audit?limit=0", admin, nil, 400)
	call("GET", "/api/v1/compliance?by=computers", admin, nil, 200)
	call("GET", "/api/v1/compliance?by=groups&format=json", admin, nil, 200)
	call("GET", "/api/v1/compliance?by=everything", admin, nil, 400)
	call("GET", "/api/v1/groups/web/policy", viewer, nil, 200)
	call("GET", "/api/v1/groups/nope/policy", admin, nil, 404)
	call("PUT", "/api/v1/groups/web/policy", viewer, policy.Group{Mode: "auto"}, 403)
	call("PUT", "/api/v1/groups/web/policy", admin, policy.Group{Mode: "scheduled"}, 400)
	call("PUT", "/api/v1/groups/nope/policy", admin, policy.Group{Mode: "auto"}, 404)
	call("PUT", "/api/v1/groups/web/policy", admin, policy.Group{Mode: "auto", AutoInstallSeverity: "critical", AllowLocal: []string{"bandwidth_limit"}}, 200)
	call("GET", "/api/v1/groups/web/policy", admin, nil, 200)
	call("POST", "/api/v1/rules", admin, RuleRequest{Group: "web", MinSeverity: "critical", DeadlineIn: "7d"}, 201)
	call("POST", "/api/v1/rules", admin, RuleRequest{Group: "web", MinSeverity: "urgent"}, 400)
	call("POST", "/api/v1/rules", viewer, RuleRequest{Group: "web"}, 403)
	var rules struct{ Rules []RuleView }
	json.Unmarshal(call("GET", "/api/v1/rules", viewer, nil, 200), &rules)
	if _, err := ts.EvaluateRollouts(ctx); err != nil {
		t.Fatal(err)
	}
	call("GET", "/api/v1/rollouts", viewer, nil, 200)
	call("GET", "/api/v1/rollouts?state=halted", viewer, nil, 200)
	call("GET", "/api/v1/rollouts?state=odd", viewer, nil, 400)
	call("POST", "/api/v1/rollouts/web/example/BW-9/resume", admin, nil, 404)
	call("POST", "/api/v1/rollouts/web/example/BW-1/resume", viewer, nil, 403)
	call("PUT", "/api/v1/groups/web/halt-threshold", admin, ThresholdRequest{FailedPercent: 10, MinResults: 5}, 200)
	call("PUT", "/api/v1/groups/web/halt-threshold", admin, ThresholdRequest{FailedPercent: 10, MinResults: 0}, 400)
	call("PUT", "/api/v1/groups/nope/halt-threshold", admin, ThresholdRequest{FailedPercent: 10, MinResults: 5}, 404)
	call("DELETE", "/api/v1/rules/"+rules.Rules[0].ID, admin, nil, 204)
	call("DELETE", "/api/v1/rules/"+rules.Rules[0].ID, admin, nil, 404)
	call("DELETE", "/api/v1/groups/web", admin, nil, 204)
	call("DELETE", "/api/v1/groups/web", admin, nil, 404)

	var missing []string
	for p, item := range doc.Paths.Map() {
		for m := range item.Operations() {
			if !seen[m+" "+p] {
				missing = append(missing, m+" "+p)
			}
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("documented but not exercised against the live server: %s", strings.Join(missing, ", "))
	}
}

// TestAPIProblems: every API error, the router's own included, is an RFC
// 9457 problem document; a 401 says how to authenticate.
func TestAPIProblems(t *testing.T) {
	ts := startServer(t, Config{})
	for _, c := range []struct {
		method, path, token string
		code                int
		allow               string
	}{
		{"GET", "/api/v1/nothing-here", ts.first.AdminToken, 404, ""},
		{"GET", "/agent/v1/nothing-here", "", 404, ""},
		{"PATCH", "/api/v1/groups", ts.first.AdminToken, 405, "GET, HEAD, POST"},
		{"GET", "/api/v1/groups", "", 401, ""},
		{"GET", "/api/v1/computers/agt-none", ts.first.AdminToken, 404, ""},
	} {
		code, b, hdr := ts.do(ts.client, c.method, c.path, c.token, nil)
		var p Problem
		err := json.Unmarshal(b, &p)
		if code != c.code || err != nil || p.Status != c.code || p.Title != http.StatusText(c.code) || p.Type != "about:blank" || p.Detail == "" ||
			p.Error != p.Detail || hdr.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s %s: %d %s %v (%s)", c.method, c.path, code, b, err, hdr.Get("Content-Type"))
		}
		if c.allow != "" && hdr.Get("Allow") != c.allow {
			t.Errorf("%s %s: Allow %q, want %q", c.method, c.path, hdr.Get("Allow"), c.allow)
		}
		if c.code == 401 && hdr.Get("WWW-Authenticate") != `Bearer realm="bulwark"` {
			t.Errorf("%s %s: WWW-Authenticate %q", c.method, c.path, hdr.Get("WWW-Authenticate"))
		}
	}
}

// TestOpenAPIRoutes: every /api/ and /agent/ route the server registers is
// in openapi.json, and every operation there is registered. Routes are read
// from the package's source (every mux.Handle/HandleFunc call); a pattern
// that is not a string literal fails the test, so none can hide.
func TestOpenAPIRoutes(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromData(openAPI)
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for p, item := range doc.Paths.Map() {
		for m := range item.Operations() {
			documented[m+" "+p] = true
		}
	}
	registered := map[string]bool{}
	fset := token.NewFileSet()
	files, _ := filepath.Glob("*.go")
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || (sel.Sel.Name != "HandleFunc" && sel.Sel.Name != "Handle") || len(call.Args) != 2 {
				return true
			}
			lit, ok := call.Args[0].(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				t.Errorf("%s: a route pattern that is not a string literal", fset.Position(call.Pos()))
				return true
			}
			pattern, _ := strconv.Unquote(lit.Value)
			method, path, ok := strings.Cut(pattern, " ")
			if !ok {
				t.Errorf("%s: route %q has no method", fset.Position(call.Pos()), pattern)
				return true
			}
			if strings.HasPrefix(path, "/api/") || strings.HasPrefix(path, "/agent/") {
				registered[method+" "+path] = true
			}
			return true
		})
	}
	if len(registered) < 20 {
		t.Fatalf("found %d API routes in the source; the scan is broken", len(registered))
	}
	for r := range registered {
		if !documented[r] {
			t.Errorf("route %s is registered but not in openapi.json", r)
		}
	}
	for r := range documented {
		if !registered[r] {
			t.Errorf("openapi.json documents %s, which no route serves", r)
		}
	}
}
