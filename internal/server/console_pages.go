package server

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bulwarkhq/bulwark/internal/catalog"
	"github.com/bulwarkhq/bulwark/internal/store"
	"github.com/bulwarkhq/bulwark/internal/wire"
)

const (
	pageSize         = 50
	defaultStaleDays = 7
)

func (s *Server) consoleRoutes(mux *http.ServeMux) {
	v, ap, ad := store.RoleViewer, store.RoleApprover, store.RoleAdmin
	mux.HandleFunc("GET /console/static/{file}", s.consoleStatic)
	mux.HandleFunc("GET /console/signin", s.consoleSignin)
	mux.HandleFunc("POST /console/signin", s.consoleSignin)
	mux.HandleFunc("POST /console/signout", s.page(v, s.consoleSignout))
	mux.HandleFunc("GET /console/{$}", s.page(v, s.consoleDashboard))
	mux.HandleFunc("GET /console", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/console/", http.StatusSeeOther)
	})
	mux.HandleFunc("GET /console/computers", s.page(v, s.consoleComputers))
	mux.HandleFunc("POST /console/computers/move", s.page(ad, s.consoleMove))
	mux.HandleFunc("GET /console/computers/{id}", s.page(v, s.consoleComputer))
	mux.HandleFunc("GET /console/updates", s.page(v, s.consoleUpdates))
	mux.HandleFunc("GET /console/updates/{vendor}/{id}", s.page(v, s.consoleUpdate))
	mux.HandleFunc("POST /console/updates/{vendor}/{id}/approval", s.page(ap, s.consoleApproval))
	mux.HandleFunc("GET /console/groups", s.page(v, s.consoleGroups))
	mux.HandleFunc("POST /console/groups", s.page(ad, s.consoleCreateGroup))
	mux.HandleFunc("POST /console/groups/{group}/rename", s.page(ad, s.consoleRenameGroup))
	mux.HandleFunc("GET /console/groups/{group}/policy", s.page(v, s.consoleGroupPolicy))
	mux.HandleFunc("POST /console/groups/{group}/policy", s.page(ad, s.consoleSetGroupPolicy))
	mux.HandleFunc("GET /console/rollouts", s.page(v, s.consoleRollouts))
	mux.HandleFunc("POST /console/rollouts/{group}/{vendor}/{id}/resume", s.page(ap, s.consoleResumeRollout))
	mux.HandleFunc("POST /console/rollouts/threshold", s.page(ad, s.consoleSetThreshold))
	mux.HandleFunc("POST /console/rules", s.page(ad, s.consoleCreateRule))
	mux.HandleFunc("POST /console/rules/{id}/delete", s.page(ad, s.consoleDeleteRule))
	mux.HandleFunc("GET /console/audit", s.page(ad, s.consoleAudit))
	mux.HandleFunc("GET /console/users", s.page(ad, s.consoleUsers))
	mux.HandleFunc("POST /console/users", s.page(ad, s.consoleCreateUser))
	mux.HandleFunc("POST /console/users/{name}/{action}", s.page(ad, s.consoleChangeUser))
	mux.HandleFunc("POST /console/users/{name}/password", s.page(ad, s.consoleResetPassword))
	mux.HandleFunc("GET /console/password", s.page(v, s.consolePassword))
	mux.HandleFunc("POST /console/password", s.page(v, s.consolePassword))
	mux.HandleFunc("POST /console/groups/{group}/delete", s.page(ad, s.consoleDeleteGroup))
	mux.HandleFunc("POST /console/computers/{id}/{action}", s.page(ad, s.consoleComputerAction))
	mux.HandleFunc("GET /console/export/{file}", s.page(v, s.consoleExport))
	mux.HandleFunc("GET /console/sync", s.page(v, s.consoleSync))
	mux.HandleFunc("POST /console/sync", s.page(ad, s.consoleSyncNow))
	mux.HandleFunc("GET /console/tokens", s.page(ad, s.consoleTokens))
	mux.HandleFunc("POST /console/tokens", s.page(ad, s.consoleCreateToken))
	mux.HandleFunc("POST /console/tokens/{id}/revoke", s.page(ad, s.consoleRevokeToken))
}

// Dashboard.

// bar is one bar of a server-rendered SVG chart.
type bar struct {
	Label      string
	Value      int
	Href       string
	X, Y, W, H int
	TextX      int
	Class      string
}

// chart is a horizontal bar chart drawn on the server.
type chart struct {
	Title  string
	Width  int
	Height int
	Bars   []bar
}

// barChart lays out bars against the largest value.
func barChart(title string, bars []bar) chart {
	const labelW, barMax, rowH = 150, 300, 26
	max := 1
	for _, b := range bars {
		if b.Value > max {
			max = b.Value
		}
	}
	for i := range bars {
		b := &bars[i]
		b.X, b.Y, b.H = labelW, i*rowH+4, rowH-8
		b.W = b.Value * barMax / max
		if b.Value > 0 && b.W < 2 {
			b.W = 2
		}
		b.TextX = labelW + b.W + 6
	}
	return chart{Title: title, Width: labelW + barMax + 80, Height: len(bars)*rowH + 8, Bars: bars}
}

type dashboard struct {
	Groups     []store.GroupCompliance
	Total      store.GroupCompliance
	StaleDays  int
	BySeverity chart
	ByGroup    chart
	Elapsed    time.Duration
}

func (s *Server) consoleDashboard(w http.ResponseWriter, r *http.Request) error {
	start := time.Now()
	d, err := s.dashboard(r)
	if err != nil {
		return err
	}
	d.Elapsed = time.Since(start).Round(10 * time.Microsecond)
	s.render(w, r, http.StatusOK, "dashboard", "Dashboard", d)
	return nil
}

// daysAgo is the start of the UTC day n days before now: "not seen for n
// days" counts whole days, so the dashboard's counts (kept per day) and the
// lists behind them agree.
func daysAgo(now time.Time, n int) time.Time {
	return now.UTC().Add(-time.Duration(n) * 24 * time.Hour).Truncate(24 * time.Hour)
}

func (s *Server) dashboard(r *http.Request) (*dashboard, error) {
	d := &dashboard{StaleDays: defaultStaleDays}
	gs, err := s.st.GroupCompliance(r.Context(), daysAgo(s.now(), d.StaleDays))
	if err != nil {
		return nil, err
	}
	d.Groups = gs
	var byGroup []bar
	for _, g := range gs {
		t := &d.Total
		t.Computers += g.Computers
		t.MissingCritical += g.MissingCritical
		t.MissingImportant += g.MissingImportant
		t.MissingOther += g.MissingOther
		t.Failed += g.Failed
		t.PendingReboot += g.PendingReboot
		t.Stale += g.Stale
		t.Compliant += g.Compliant
		byGroup = append(byGroup, bar{Label: g.Group, Value: g.Computers - g.Compliant, Class: "missing",
			Href: "/console/computers?" + url.Values{"group": {g.Group}, "missing": {"any"}}.Encode()})
	}
	t := d.Total
	d.BySeverity = barChart("Computers missing updates, by severity", []bar{
		{Label: "critical", Value: t.MissingCritical, Href: "/console/computers?missing=critical", Class: "critical"},
		{Label: "important", Value: t.MissingImportant, Href: "/console/computers?missing=important", Class: "important"},
		{Label: "moderate or lower", Value: t.MissingOther, Href: "/console/computers?missing=other", Class: "other"},
		{Label: "failed installs", Value: t.Failed, Href: "/console/computers?failed=1", Class: "failed"},
		{Label: "pending reboot", Value: t.PendingReboot, Href: "/console/computers?reboot=1", Class: "reboot"},
		{Label: fmt.Sprintf("not seen %d days", d.StaleDays), Value: t.Stale, Href: fmt.Sprintf("/console/computers?stale=%d", d.StaleDays), Class: "stale"},
		{Label: "compliant", Value: t.Compliant, Href: "/console/computers?missing=none", Class: "ok"},
	})
	d.ByGroup = barChart("Computers not compliant, by group", byGroup)
	return d, nil
}

// Computers.

var (
	computerStatuses = []string{store.AgentActive, store.AgentRevoked, store.AgentReenroll}
	missingValues    = []string{"critical", "important", "other", "any", "none"}
)

// oneOf checks a filter value against the values it may take: an unknown
// value is an error, never an empty list.
func oneOf(name, v string, allowed []string) error {
	if v == "" || slices.Contains(allowed, v) {
		return nil
	}
	return errorf(http.StatusBadRequest, "%s %q: use one of %s", name, v, strings.Join(allowed, ", "))
}

func flagParam(q url.Values, name string) (bool, error) {
	switch q.Get(name) {
	case "":
		return false, nil
	case "1", "true":
		return true, nil
	}
	return false, errorf(http.StatusBadRequest, "%s %q: use 1 or leave it out", name, q.Get(name))
}

// computerFilter reads a computer list's filters, cursor and page size
// (limit, 1 to 1000; default limit) from a query.
func (s *Server) computerFilter(r *http.Request, limit int) (store.ComputerFilter, error) {
	q := r.URL.Query()
	f := store.ComputerFilter{Search: strings.TrimSpace(q.Get("q")), Group: q.Get("group"), Status: q.Get("status"), Missing: q.Get("missing"), OS: q.Get("os"), Limit: limit}
	for k := range q {
		if !slices.Contains([]string{"q", "group", "status", "missing", "os", "failed", "reboot", "stale", "seen", "after", "limit"}, k) {
			return f, errorf(http.StatusBadRequest, "filter %q: use q, group, status, missing, os, failed, reboot, stale, seen, after or limit", k)
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return f, errorf(http.StatusBadRequest, "limit %q: use 1 to 1000", v)
		}
		f.Limit = n
	}
	if len(f.Search) > 200 {
		return f, errorf(http.StatusBadRequest, "q: at most 200 characters")
	}
	if err := oneOf("status", f.Status, computerStatuses); err != nil {
		return f, err
	}
	if err := oneOf("missing", f.Missing, missingValues); err != nil {
		return f, err
	}
	if f.Group != "" {
		if _, err := s.st.Approvals(r.Context(), f.Group); err != nil {
			return f, storeErr(err, "group "+f.Group)
		}
	}
	var err error
	if f.Failed, err = flagParam(q, "failed"); err != nil {
		return f, err
	}
	if f.Reboot, err = flagParam(q, "reboot"); err != nil {
		return f, err
	}
	for _, p := range []struct {
		name string
		t    *time.Time
	}{{"stale", &f.StaleFrom}, {"seen", &f.SeenAfter}} {
		if v := q.Get(p.name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 3650 {
				return f, errorf(http.StatusBadRequest, "%s %q: use a number of days from 0 to 3650", p.name, v)
			}
			*p.t = daysAgo(s.now(), n)
		}
	}
	if v := q.Get("after"); v != "" {
		b, err := base64.RawURLEncoding.DecodeString(v)
		if err != nil || !strings.Contains(string(b), "\x00") {
			return f, errorf(http.StatusBadRequest, "after %q: use the cursor of the next-page link", v)
		}
		f.After = string(b)
	}
	return f, nil
}

func cursorOf(c store.Computer) string {
	return base64.RawURLEncoding.EncodeToString([]byte(c.Hostname + "\x00" + c.ID))
}

type computerList struct {
	Filter    store.ComputerFilter
	Query     url.Values
	Computers []store.Computer
	Count     int
	Next      string // URL of the next page, "" on the last
	Groups    []store.Group
	Statuses  []string
	Missing   []string
	Elapsed   time.Duration
}

func (s *Server) consoleComputers(w http.ResponseWriter, r *http.Request) error {
	start := time.Now()
	f, err := s.computerFilter(r, pageSize)
	if err != nil {
		return err
	}
	cs, err := s.st.ListComputers(r.Context(), f)
	if err != nil {
		return err
	}
	n, err := s.st.CountComputers(r.Context(), f)
	if err != nil {
		return err
	}
	gs, err := s.st.ListGroups(r.Context())
	if err != nil {
		return err
	}
	l := &computerList{Filter: f, Query: r.URL.Query(), Computers: cs, Count: n, Groups: gs, Statuses: computerStatuses, Missing: missingValues}
	if len(cs) == f.Limit {
		q := r.URL.Query()
		q.Set("after", cursorOf(cs[len(cs)-1]))
		l.Next = "/console/computers?" + q.Encode()
	}
	l.Elapsed = time.Since(start).Round(10 * time.Microsecond)
	s.render(w, r, http.StatusOK, "computers", "Computers", l)
	return nil
}

func (s *Server) consoleMove(w http.ResponseWriter, r *http.Request) error {
	ids, g := r.PostForm["computer"], r.PostForm.Get("group")
	if err := s.moveComputers(r.Context(), ids, g); err != nil {
		return err
	}
	s.audit(r, viewerFrom(r.Context()).Subject, "console", "computers.move", g, strings.Join(ids, " "))
	back := r.PostForm.Get("back")
	if !strings.HasPrefix(back, "/console/") || strings.HasPrefix(back, "//") {
		back = "/console/computers"
	}
	http.Redirect(w, r, back, http.StatusSeeOther)
	return nil
}

// stateRow is one update's state on a computer, with what the index knows.
type stateRow struct {
	store.UpdateState
	Title    string
	Severity string
}

type computerPage struct {
	C        *store.Computer
	Inv      *wire.Inventory
	States   []stateRow
	Missing  map[string][]stateRow // by severity
	Severity []string
	Events   []store.StateEvent
	Groups   []store.Group
	Lockdown *store.LockdownStatus // nil: no audit reported
}

var severities = []string{"critical", "important", "moderate", "low", "unspecified"}

func (s *Server) consoleComputer(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	c, err := s.st.Computer(ctx, r.PathValue("id"))
	if err != nil {
		return storeErr(err, "computer "+r.PathValue("id"))
	}
	p := &computerPage{C: c, Missing: map[string][]stateRow{}, Severity: severities}
	if len(c.Inventory) > 0 {
		var inv wire.Inventory
		if err := json.Unmarshal(c.Inventory, &inv); err == nil {
			p.Inv = &inv
		}
	}
	states, err := s.st.AgentStates(ctx, c.ID)
	if err != nil {
		return err
	}
	for _, st := range states {
		row := stateRow{UpdateState: st, Severity: "unspecified"}
		if u, err := s.st.GetUpdate(ctx, st.Vendor, st.UpdateID); err == nil {
			row.Title, row.Severity = u.Title, u.Severity
		}
		p.States = append(p.States, row)
		switch st.State {
		case "needed", "downloaded", "failed":
			p.Missing[row.Severity] = append(p.Missing[row.Severity], row)
		}
	}
	if p.Events, err = s.st.StateEvents(ctx, c.ID, store.TimelineEvents); err != nil {
		return err
	}
	if p.Groups, err = s.st.ListGroups(ctx); err != nil {
		return err
	}
	if p.Lockdown, err = s.computerLockdown(ctx, c.ID); err != nil {
		return err
	}
	s.render(w, r, http.StatusOK, "computer", c.Hostname, p)
	return nil
}

// Updates.

type updateRow struct {
	store.Update
	Needed   int
	States   map[string]int
	Approval string // the chosen group's action, "" when none
}

type updateList struct {
	Query                          url.Values
	Updates                        []updateRow
	Vendors, Classifications, Sevs []string
	Groups                         []store.Group
	Group, Approval                string
	ApprovalStates                 []string
	Next                           string // URL of the next page, "" on the last
}

func (s *Server) vendorNames() []string {
	var vendors []string
	for _, rp := range s.sortedRepos() {
		vendors = append(vendors, rp.name)
	}
	return vendors
}

// updateFilter reads the catalog filters (vendor, product, classification,
// severity, and the extra keys a caller takes) strictly: unknown keys and
// values are errors that list what is valid.
func (s *Server) updateFilter(q url.Values, extra ...string) (store.UpdateFilter, error) {
	keys := append([]string{"vendor", "product", "classification", "severity", "cve", "needed_min"}, extra...)
	for k := range q {
		if !slices.Contains(keys, k) {
			return store.UpdateFilter{}, errorf(http.StatusBadRequest, "filter %q: use %s", k, strings.Join(keys, ", "))
		}
	}
	f := store.UpdateFilter{Vendor: q.Get("vendor"), Product: q.Get("product"), Classification: q.Get("classification"), Severity: q.Get("severity"),
		CVE: strings.ToUpper(strings.TrimSpace(q.Get("cve")))}
	if f.CVE != "" && !cvePattern().MatchString(f.CVE) {
		return f, errorf(http.StatusBadRequest, "cve %q: use a CVE id such as CVE-2026-1234", q.Get("cve"))
	}
	if _, err := neededMin(q); err != nil {
		return f, err
	}
	for _, c := range []struct {
		name, v string
		allowed []string
	}{{"vendor", f.Vendor, s.vendorNames()}, {"classification", f.Classification, classifications}, {"severity", f.Severity, severities}} {
		if err := oneOf(c.name, c.v, c.allowed); err != nil {
			return f, err
		}
	}
	return f, nil
}

// cvePattern is a CVE id (the CVE program's syntax: a year and at least
// four digits).
var cvePattern = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^CVE-[0-9]{4}-[0-9]{4,}$`) })

// neededMin reads the needed_min filter: updates that at least that many
// computers need (0: every update).
func neededMin(q url.Values) (int, error) {
	v := strings.TrimSpace(q.Get("needed_min"))
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, errorf(http.StatusBadRequest, "needed_min %q: use a whole number of computers, 0 or more", v)
	}
	return n, nil
}

var classifications = []string{"security", "critical", "rollup", "service-pack", "definition", "feature", "driver", "tool", "update"}

func (s *Server) consoleUpdates(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	q := r.URL.Query()
	f, err := s.updateFilter(q, "group", "approval", "needed", "after")
	if err != nil {
		return err
	}
	pg, err := pageParams(r, pageSize)
	if err != nil {
		return err
	}
	approvalStates := []string{"install", "uninstall", "decline", "none"}
	l := &updateList{Query: q, Vendors: s.vendorNames(), Classifications: classifications, Sevs: severities, Group: q.Get("group"), Approval: q.Get("approval"), ApprovalStates: approvalStates}
	if err := oneOf("approval", l.Approval, approvalStates); err != nil {
		return err
	}
	needed, err := flagParam(q, "needed")
	if err != nil {
		return err
	}
	if l.Approval != "" && l.Group == "" {
		return errorf(http.StatusBadRequest, "approval: choose a group too")
	}
	approvals := map[string]string{}
	if l.Group != "" {
		aps, err := s.st.Approvals(ctx, l.Group)
		if err != nil {
			return storeErr(err, "group "+l.Group)
		}
		for _, a := range aps {
			approvals[a.Vendor+"/"+a.UpdateID] = a.Action
		}
	}
	us, err := s.updateViews(ctx, f)
	if err != nil {
		return err
	}
	min, _ := neededMin(q) // checked by updateFilter
	for _, u := range us {
		row := updateRow{Update: u.Update, States: u.States, Approval: approvals[u.Vendor+"/"+u.ID], Needed: u.NeededBy}
		if needed && row.Needed == 0 || row.Needed < min {
			continue
		}
		if l.Approval != "" && (l.Approval == "none") != (row.Approval == "") || (l.Approval != "none" && l.Approval != "" && row.Approval != l.Approval) {
			continue
		}
		l.Updates = append(l.Updates, row)
	}
	var next string
	if l.Updates, next = paginate(l.Updates, func(u updateRow) string { return u.Vendor + "\x00" + u.ID }, pg); next != "" {
		nq := r.URL.Query()
		nq.Set("after", next)
		l.Next = "/console/updates?" + nq.Encode()
	}
	if l.Groups, err = s.st.ListGroups(ctx); err != nil {
		return err
	}
	s.render(w, r, http.StatusOK, "updates", "Updates", l)
	return nil
}

type groupApproval struct {
	Group     string
	Computers int
	Approval  *store.Approval
	States    map[string]int
}

type updatePage struct {
	U       *store.Update
	Meta    *catalog.Update
	MetaErr string
	Groups  []groupApproval
	States  map[string]int
}

func (s *Server) consoleUpdate(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	vendor, id := r.PathValue("vendor"), r.PathValue("id")
	u, err := s.st.GetUpdate(ctx, vendor, id)
	if err != nil {
		return storeErr(err, "update "+vendor+"/"+id)
	}
	p := &updatePage{U: u}
	if rp, ok := s.repos[vendor]; ok {
		if _, meta, err := s.updateTargets(ctx, rp, id); err == nil {
			p.Meta = meta
		} else {
			p.MetaErr = err.Error()
		}
	}
	if p.States, err = s.st.GroupStateCounts(ctx, "", vendor, id); err != nil {
		return err
	}
	gs, err := s.st.ListGroups(ctx)
	if err != nil {
		return err
	}
	for _, g := range gs {
		ga := groupApproval{Group: g.Name, Computers: g.Computers}
		aps, err := s.st.Approvals(ctx, g.Name)
		if err != nil {
			return err
		}
		for i := range aps {
			if aps[i].Vendor == vendor && aps[i].UpdateID == id {
				ga.Approval = &aps[i]
			}
		}
		if ga.States, err = s.st.GroupStateCounts(ctx, g.Name, vendor, id); err != nil {
			return err
		}
		p.Groups = append(p.Groups, ga)
	}
	s.render(w, r, http.StatusOK, "update", u.ID, p)
	return nil
}

type confirmPage struct {
	U         *store.Update
	Group     string
	Action    string
	Deadline  string
	Rollout   string
	Computers int
	Needing   int
	Form      url.Values
}

// consoleApproval sets, changes or removes one group's approval of an
// update. The first post shows what it will do and to how many machines;
// only a second post with confirm=yes does it.
func (s *Server) consoleApproval(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	vendor, id := r.PathValue("vendor"), r.PathValue("id")
	u, err := s.st.GetUpdate(ctx, vendor, id)
	if err != nil {
		return storeErr(err, "update "+vendor+"/"+id)
	}
	g, action := r.PostForm.Get("group"), r.PostForm.Get("action")
	if _, err := s.st.Approvals(ctx, g); err != nil {
		return storeErr(err, "group "+g)
	}
	req := ApprovalRequest{Action: action}
	if action != "remove" {
		if v := r.PostForm.Get("rollout"); v != "" {
			if req.Rollout, err = strconv.Atoi(v); err != nil {
				return errorf(http.StatusBadRequest, "rollout %q: use a percentage from 1 to 100", v)
			}
		}
		if v := r.PostForm.Get("deadline"); v != "" {
			t, err := time.ParseInLocation("2006-01-02T15:04", v, time.UTC)
			if err != nil {
				return errorf(http.StatusBadRequest, "deadline %q: use a date and time (UTC) such as 2026-12-01T18:00", v)
			}
			req.Deadline = &t
		}
		if err := req.validate(s.now()); err != nil {
			return err
		}
	}
	if r.PostForm.Get("confirm") != "yes" {
		n, err := s.st.CountComputers(ctx, store.ComputerFilter{Group: g})
		if err != nil {
			return err
		}
		st, err := s.st.GroupStateCounts(ctx, g, vendor, id)
		if err != nil {
			return err
		}
		form := url.Values{}
		for _, k := range []string{"group", "action", "rollout", "deadline"} {
			form.Set(k, r.PostForm.Get(k))
		}
		s.render(w, r, http.StatusOK, "confirm", "Confirm", &confirmPage{U: u, Group: g, Action: action, Deadline: r.PostForm.Get("deadline"),
			Rollout: strconv.Itoa(req.Rollout), Computers: n, Needing: st["needed"] + st["downloaded"] + st["failed"], Form: form})
		return nil
	}
	v := viewerFrom(ctx)
	detail := fmt.Sprintf("group %s action %s", g, action)
	if action == "remove" {
		if err := s.removeApproval(ctx, g, vendor, id); err != nil {
			return err
		}
	} else {
		a := &store.Approval{Group: g, Vendor: vendor, UpdateID: id, Action: req.Action, Deadline: req.Deadline, Rollout: req.Rollout, By: v.Subject, UpdatedAt: s.now()}
		if err := s.putApproval(ctx, a); err != nil {
			return err
		}
		detail += fmt.Sprintf(" rollout %d", req.Rollout)
		if req.Deadline != nil {
			detail += " deadline " + req.Deadline.Format(time.RFC3339)
		}
	}
	s.audit(r, v.Subject, "console", "approval."+action, vendor+"/"+id, detail)
	http.Redirect(w, r, "/console/updates/"+url.PathEscape(vendor)+"/"+url.PathEscape(id), http.StatusSeeOther)
	return nil
}

// Groups.

func (s *Server) consoleGroups(w http.ResponseWriter, r *http.Request) error {
	gs, err := s.st.GroupCompliance(r.Context(), daysAgo(s.now(), defaultStaleDays))
	if err != nil {
		return err
	}
	s.render(w, r, http.StatusOK, "groups", "Groups", gs)
	return nil
}

func (s *Server) consoleCreateGroup(w http.ResponseWriter, r *http.Request) error {
	name := strings.TrimSpace(r.PostForm.Get("name"))
	if err := s.createGroup(r.Context(), name); err != nil {
		return err
	}
	s.audit(r, viewerFrom(r.Context()).Subject, "console", "group.create", name, "")
	http.Redirect(w, r, "/console/groups", http.StatusSeeOther)
	return nil
}

func (s *Server) consoleRenameGroup(w http.ResponseWriter, r *http.Request) error {
	from, to := r.PathValue("group"), strings.TrimSpace(r.PostForm.Get("name"))
	if err := s.renameGroup(r.Context(), from, to); err != nil {
		return err
	}
	s.audit(r, viewerFrom(r.Context()).Subject, "console", "group.rename", from, "to "+to)
	http.Redirect(w, r, "/console/groups", http.StatusSeeOther)
	return nil
}

// Audit log and users.

type auditPageData struct {
	Entries []store.AuditEntry
	Next    string
}

func (s *Server) consoleAudit(w http.ResponseWriter, r *http.Request) error {
	es, next, err := s.auditList(r)
	if err != nil {
		return err
	}
	p := &auditPageData{Entries: es, Next: next}
	s.render(w, r, http.StatusOK, "audit", "Audit log", p)
	return nil
}

func (s *Server) consoleExport(w http.ResponseWriter, r *http.Request) error {
	by, format, _ := strings.Cut(r.PathValue("file"), ".")
	return s.writeCompliance(w, r, by, format)
}

func (s *Server) apiCompliance(w http.ResponseWriter, r *http.Request) error {
	format := r.URL.Query().Get("format")
	if format == "" {
		format = "json"
	}
	return s.writeCompliance(w, r, r.URL.Query().Get("by"), format)
}
