package server

import (
	"encoding/csv"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/bulwarkhq/bulwark/internal/store"
)

// writeCompliance exports compliance per computer, per update or per group
// as CSV or JSON. Computers are read from the store a page at a time.
func (s *Server) writeCompliance(w http.ResponseWriter, r *http.Request, by, format string) error {
	if err := oneOf("by", by, []string{"computers", "updates", "groups"}); err != nil || by == "" {
		return errorf(http.StatusBadRequest, "by %q: use computers, updates or groups", by)
	}
	if format != "csv" && format != "json" {
		return errorf(http.StatusBadRequest, "format %q: use csv or json", format)
	}
	ctx := r.Context()
	var header []string
	var rows [][]string
	var objs []any
	add := func(obj any, row ...string) {
		if format == "csv" {
			rows = append(rows, row)
		} else {
			objs = append(objs, obj)
		}
	}
	itoa := strconv.Itoa
	switch by {
	case "computers":
		header = []string{"id", "hostname", "group", "os", "status", "last_seen", "missing_critical", "missing_important", "missing_other", "failed", "pending_reboot"}
		f := store.ComputerFilter{Limit: 1000}
		for {
			cs, err := s.st.ListComputers(ctx, f)
			if err != nil {
				return err
			}
			for _, c := range cs {
				add(c, c.ID, c.Hostname, c.Group, c.OS, c.Status, c.LastSeen.Format(time.RFC3339), itoa(c.MissingCritical), itoa(c.MissingImportant),
					itoa(c.MissingOther), itoa(c.Failed), strconv.FormatBool(c.PendingReboot))
			}
			if len(cs) < f.Limit {
				break
			}
			f.After = cs[len(cs)-1].Hostname + "\x00" + cs[len(cs)-1].ID
		}
	case "updates":
		header = []string{"vendor", "id", "title", "classification", "severity", "needed", "downloaded", "installed", "installed_pending_reboot", "failed", "not_applicable"}
		us, err := s.updateViews(ctx, store.UpdateFilter{})
		if err != nil {
			return err
		}
		for _, u := range us {
			c := u.States
			add(u, u.Vendor, u.ID, u.Title, u.Classification, u.Severity, itoa(c["needed"]), itoa(c["downloaded"]),
				itoa(c["installed"]), itoa(c["installed-pending-reboot"]), itoa(c["failed"]), itoa(c["not-applicable"]))
		}
	case "groups":
		header = []string{"group", "computers", "compliant", "missing_critical", "missing_important", "missing_other", "failed", "pending_reboot", "stale"}
		gs, err := s.st.GroupCompliance(ctx, daysAgo(s.now(), defaultStaleDays))
		if err != nil {
			return err
		}
		for _, g := range gs {
			add(g, g.Group, itoa(g.Computers), itoa(g.Compliant), itoa(g.MissingCritical), itoa(g.MissingImportant), itoa(g.MissingOther),
				itoa(g.Failed), itoa(g.PendingReboot), itoa(g.Stale))
		}
	}
	name := "bulwark-compliance-" + by + "." + format
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if format == "json" {
		if objs == nil {
			objs = []any{}
		}
		w.Header().Set("Content-Type", "application/json")
		return json.NewEncoder(w).Encode(map[string]any{by: objs})
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	cw := csv.NewWriter(w)
	cw.Write(header)
	for _, row := range rows {
		// A cell starting with =, +, - or @ would be a formula in a
		// spreadsheet: hostnames and titles come from agents and vendors.
		for i, c := range row {
			if c != "" && (c[0] == '=' || c[0] == '+' || c[0] == '-' || c[0] == '@') {
				row[i] = "'" + c
			}
		}
		cw.Write(row)
	}
	cw.Flush()
	return cw.Error()
}
