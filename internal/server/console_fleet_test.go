package server

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/bulwarkhq/bulwark/internal/store"
)

// TestConsoleDeleteGroup: deleting a group that computers and approvals
// refer to first says how many and where the computers go; only the
// confirmed post deletes it. The default group is refused.
func TestConsoleDeleteGroup(t *testing.T) {
	ts, _ := consoleServer(t)
	ctx := context.Background()
	for _, g := range []string{"web", "db", "empty"} {
		ts.admin("POST", "/api/v1/groups", GroupRequest{Name: g}, http.StatusCreated)
	}
	a := ts.enroll(ts.newToken(TokenRequest{Kind: "enroll", Group: "web"}), machineA, "")
	ts.admin("PUT", "/api/v1/groups/web/approvals/example/BW-1", ApprovalRequest{Action: "install"}, http.StatusOK)
	b := newBrowser(t, ts)
	b.signIn("admin", ts.first.AdminPassword)
	_, body, _ := b.get("/console/groups")
	if !strings.Contains(body, `action="/console/groups/web/delete"`) || strings.Contains(body, `action="/console/groups/default/delete"`) {
		t.Fatalf("groups page delete buttons:\n%s", body)
	}
	code, body, _ := b.post("/console/groups/web/delete", nil, nil)
	if code != 200 || !strings.Contains(body, "1 computers are in it") || !strings.Contains(body, "1 approvals of this group are deleted") ||
		!strings.Contains(body, `<select id="move-to" name="move_to">`) || strings.Contains(body, "<option>web</option>") {
		t.Fatalf("confirmation: %d %s", code, body)
	}
	if _, err := ts.st.Approvals(ctx, "web"); err != nil {
		t.Fatalf("deleted before confirmation: %v", err)
	}
	if code, body, _ := b.post("/console/groups/web/delete", url.Values{"confirm": {"yes"}, "move_to": {"nope"}}, nil); code != http.StatusNotFound {
		t.Fatalf("move to a missing group: %d %s", code, body)
	}
	if code, body, _ := b.post("/console/groups/web/delete", url.Values{"confirm": {"yes"}, "move_to": {"db"}}, nil); code != 200 {
		t.Fatalf("confirmed delete: %d %s", code, body)
	}
	if _, err := ts.st.Approvals(ctx, "web"); err == nil {
		t.Fatal("group web still exists")
	}
	if c, _ := ts.st.Agent(ctx, a.resp.AgentID); c.Group != "db" {
		t.Fatalf("computer in %q, want db", c.Group)
	}
	if doc, err := ts.site.Approvals(ctx, "web"); err != nil || len(doc.Updates) != 0 {
		t.Fatalf("the signed approvals of web after the delete: %+v %v", doc, err)
	}
	// Nothing refers to an empty group: the confirmation says so.
	if _, body, _ := b.post("/console/groups/empty/delete", nil, nil); !strings.Contains(body, "Nothing refers to it") {
		t.Fatalf("empty group confirmation:\n%s", body)
	}
	if code, body, _ := b.post("/console/groups/default/delete", url.Values{"confirm": {"yes"}}, nil); code != http.StatusBadRequest || !strings.Contains(body, "cannot be deleted") {
		t.Fatalf("delete default: %d %s", code, body)
	}
	es, _ := ts.st.ListAudit(ctx, 0, 1)
	if len(es) != 1 || es[0].Action != "group.delete" || es[0].Target != "web" || es[0].Detail != "1 computers to db, 1 approvals deleted" {
		t.Fatalf("audit = %+v", es)
	}
}

// TestConsoleRevokeAndRemoveComputer: revoke after a confirmation, and
// the agent is refused; remove, and the computer is gone.
func TestConsoleRevokeAndRemoveComputer(t *testing.T) {
	ts, _ := consoleServer(t)
	ctx := context.Background()
	a := ts.enroll(ts.newToken(TokenRequest{Kind: "enroll"}), machineA, "")
	b2 := ts.enroll(ts.newToken(TokenRequest{Kind: "enroll"}), machineB, "")
	b := newBrowser(t, ts)
	b.signIn("admin", ts.first.AdminPassword)
	_, body, _ := b.get("/console/computers/" + a.resp.AgentID)
	if !strings.Contains(body, "/revoke") || !strings.Contains(body, "/remove") || strings.Contains(body, "/approve") {
		t.Fatalf("computer page actions:\n%s", body)
	}
	code, body, _ := b.post("/console/computers/"+a.resp.AgentID+"/revoke", nil, nil)
	if code != 200 || !strings.Contains(body, "enrolling again with a new token") {
		t.Fatalf("revoke confirmation: %d %s", code, body)
	}
	if c, _ := ts.st.Agent(ctx, a.resp.AgentID); c.Status != store.AgentActive {
		t.Fatalf("revoked before confirmation: %+v", c)
	}
	b.post("/console/computers/"+a.resp.AgentID+"/revoke", url.Values{"confirm": {"yes"}}, nil)
	if c, _ := ts.st.Agent(ctx, a.resp.AgentID); c.Status != store.AgentRevoked || c.Flag != "revoked by user:admin" {
		t.Fatalf("after revoke: %+v", c)
	}
	if code, _, _ := ts.agentDo(a, a.client, "GET", "/agent/v1/checkin", nil, nil); code != http.StatusForbidden {
		t.Fatalf("revoked agent checks in: %d", code)
	}
	if code, body, _ := b.post("/console/computers/"+a.resp.AgentID+"/approve", url.Values{"confirm": {"yes"}}, nil); code != http.StatusConflict {
		t.Fatalf("approve an enrolled computer: %d %s", code, body)
	}
	if code, _, _ := b.post("/console/computers/"+a.resp.AgentID+"/explode", nil, nil); code != http.StatusNotFound {
		t.Fatalf("unknown action: %d", code)
	}
	b.post("/console/computers/"+b2.resp.AgentID+"/remove", url.Values{"confirm": {"yes"}}, nil)
	if _, err := ts.st.Agent(ctx, b2.resp.AgentID); err == nil {
		t.Fatal("removed computer still exists")
	}
	es, _ := ts.st.ListAudit(ctx, 0, 2)
	if len(es) != 2 || es[0].Action != "computer.remove" || es[1].Action != "computer.revoke" {
		t.Fatalf("audit = %+v", es)
	}
}

// TestConsoleAPITokens: an admin makes an API token in the console, its
// secret shown once and working against the API; the last usable admin
// token cannot be revoked from the console either.
func TestConsoleAPITokens(t *testing.T) {
	ts := startServer(t, Config{})
	b := newBrowser(t, ts)
	b.signIn("admin", ts.first.AdminPassword)
	b.get("/console/tokens")
	code, body, _ := b.post("/console/tokens", url.Values{"kind": {"api"}, "role": {"approver"}, "days": {"30"}, "name": {"ci"}}, nil)
	m := regexp.MustCompile(`New API token[^<]*<code>(bwa_[a-z2-7]{52})</code>`).FindStringSubmatch(body)
	if code != 200 || m == nil {
		t.Fatalf("create API token: %d %s", code, body)
	}
	if code, _, _ := ts.do(ts.client, "GET", "/api/v1/groups", m[1], nil); code != 200 {
		t.Fatalf("the new token: %d", code)
	}
	if code, _, _ := ts.do(ts.client, "POST", "/api/v1/groups", m[1], GroupRequest{Name: "x"}); code != http.StatusForbidden {
		t.Fatalf("an approver token makes a group: %d", code)
	}
	if _, body, _ := b.get("/console/tokens"); strings.Contains(body, m[1]) {
		t.Fatal("the secret is shown again")
	}
	for _, bad := range []url.Values{
		{"kind": {"api"}, "role": {"root"}, "days": {"1"}},
		{"kind": {"api"}, "role": {"admin"}, "days": {"-1"}},
		{"kind": {"enroll"}, "group": {"default"}, "max_uses": {"1"}, "days": {"0"}},
		{"kind": {"wizard"}, "days": {"1"}},
	} {
		if code, _, _ := b.post("/console/tokens", bad, nil); code != http.StatusBadRequest {
			t.Errorf("%v: %d, want 400", bad, code)
		}
	}
	first := ts.tokenID(ts.first.AdminToken)
	code, body, _ = b.post("/console/tokens/"+first+"/revoke", nil, nil)
	if code != http.StatusConflict || !strings.Contains(body, "last admin token") {
		t.Fatalf("revoke the last admin token: %d %s", code, body)
	}
}

// TestListPaging: every list of the API that grows pages by cursor: each
// is read a page of 2 at a time, and the pages together are the whole
// list, in order, with nothing twice.
func TestListPaging(t *testing.T) {
	v := newVendorRepo(t, "example")
	for i := range 5 {
		v.publish(t, fmt.Sprintf("BW-%d", i), "low", map[string]string{fmt.Sprintf("p%d.deb", i): "x"})
	}
	ts := startServer(t, Config{Vendors: []HostedVendor{{Name: "example", Dir: v.dir}}})
	ctx := context.Background()
	for range 3 {
		if _, err := ts.SyncAll(ctx, "", "manual"); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 5 {
		g := fmt.Sprintf("g%d", i)
		ts.admin("POST", "/api/v1/groups", GroupRequest{Name: g}, http.StatusCreated)
		ts.admin("PUT", fmt.Sprintf("/api/v1/groups/g0/approvals/example/BW-%d", i), ApprovalRequest{Action: "install"}, http.StatusOK)
		ts.admin("POST", "/api/v1/users", UserRequest{Name: fmt.Sprintf("user-%d", i), Role: "viewer", Password: "a long password"}, http.StatusCreated)
		ts.newToken(TokenRequest{Kind: "enroll"})
	}
	for _, c := range []struct {
		path, field, key, cursor string
		want                     int
	}{
		{"/api/v1/groups", "groups", "name", "after", 6},
		{"/api/v1/groups/g0/approvals", "approvals", "id", "after", 5},
		{"/api/v1/updates", "updates", "id", "after", 5},
		{"/api/v1/users", "users", "name", "after", 6},
		{"/api/v1/tokens", "tokens", "id", "after", 7},
		{"/api/v1/sync", "runs", "id", "before", 3},
		{"/api/v1/audit", "entries", "id", "before", 20},
	} {
		var all []string
		seen := map[string]bool{}
		next, pages := "", 0
		for {
			q := url.Values{"limit": {"2"}}
			if next != "" {
				q.Set(c.cursor, next)
			}
			var page map[string]json.RawMessage
			if err := json.Unmarshal(ts.admin("GET", c.path+"?"+q.Encode(), nil, http.StatusOK), &page); err != nil {
				t.Fatal(err)
			}
			var items []map[string]any
			json.Unmarshal(page[c.field], &items)
			if len(items) > 2 {
				t.Fatalf("%s: %d items in a page of 2", c.path, len(items))
			}
			for _, it := range items {
				k := fmt.Sprint(it[c.key])
				if seen[k] {
					t.Fatalf("%s: %s twice", c.path, k)
				}
				seen[k] = true
				all = append(all, k)
			}
			pages++
			next = ""
			json.Unmarshal(page["next"], &next)
			if next == "" {
				break
			}
			if pages > 50 {
				t.Fatalf("%s: no end", c.path)
			}
		}
		var whole map[string]json.RawMessage
		json.Unmarshal(ts.admin("GET", c.path+"?limit=1000", nil, http.StatusOK), &whole)
		var items []map[string]any
		json.Unmarshal(whole[c.field], &items)
		var want []string
		for _, it := range items {
			want = append(want, fmt.Sprint(it[c.key]))
		}
		if len(all) < c.want || len(all) <= 2 || strings.Join(all, ",") != strings.Join(want, ",") {
			t.Errorf("%s paged (%d pages): %v; whole list: %v; want at least %d", c.path, pages, all, want, c.want)
		}
	}
}

// TestConsolePagedLists: the console's token, user, update and sync lists
// page by cursor through their next links, every item once.
func TestConsolePagedLists(t *testing.T) {
	v := newVendorRepo(t, "example")
	for i := range pageSize + 2 {
		v.publish(t, fmt.Sprintf("BW-%03d", i), "low", map[string]string{fmt.Sprintf("p%d.deb", i): "x"})
	}
	ts := startServer(t, Config{Vendors: []HostedVendor{{Name: "example", Dir: v.dir}}})
	ctx := context.Background()
	for range pageSize + 1 {
		if _, err := ts.SyncAll(ctx, "", "manual"); err != nil {
			t.Fatal(err)
		}
	}
	for i := range pageSize {
		ts.newToken(TokenRequest{Kind: "enroll", Name: fmt.Sprintf("t%03d", i)})
		ts.admin("POST", "/api/v1/users", UserRequest{Name: fmt.Sprintf("u%03d", i), Role: "viewer", Password: "a long password"}, http.StatusCreated)
	}
	runs, err := ts.st.ListSyncsBefore(ctx, 0, 1000)
	if err != nil || len(runs) <= pageSize {
		t.Fatalf("%d sync runs, %v", len(runs), err)
	}
	b := newBrowser(t, ts)
	b.signIn("admin", ts.first.AdminPassword)
	next := regexp.MustCompile(`rel="next" href="([^"]+)"`)
	for _, c := range []struct {
		path string
		row  *regexp.Regexp
		want int
	}{
		{"/console/tokens", regexp.MustCompile(`<tr><td><code>(tok-[a-z2-7]+)</code>`), pageSize + 2},
		{"/console/users", regexp.MustCompile(`<tr><td>([a-z0-9]+)</td>`), pageSize + 1},
		{"/console/updates?vendor=example", regexp.MustCompile(`<tr><td><a href="/console/updates/example/(BW-\d+)">`), pageSize + 2},
		{"/console/sync", regexp.MustCompile(`<tr><td>\d{4}-[^<]*</td><td>(example)</td>`), len(runs)},
	} {
		seen, pages, path := 0, 0, c.path
		ids := map[string]bool{}
		for path != "" {
			code, body, _ := b.get(path)
			if code != 200 {
				t.Fatalf("%s: %d %s", path, code, body)
			}
			for _, m := range c.row.FindAllStringSubmatch(body, -1) {
				if ids[m[1]] && m[1] != "example" {
					t.Fatalf("%s: %s on two pages", c.path, m[1])
				}
				ids[m[1]] = true
				seen++
			}
			pages++
			path = ""
			if m := next.FindStringSubmatch(body); m != nil {
				path = html.UnescapeString(m[1])
			}
		}
		if seen != c.want || pages != 2 {
			t.Errorf("%s: %d rows on %d pages, want %d on 2", c.path, seen, pages, c.want)
		}
	}
}
