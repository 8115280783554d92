package server

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/bulwarkhq/bulwark/internal/store"
)

// The console's destructive fleet actions: deleting a group, revoking or
// removing a computer, approving a pending enrollment. Each first shows
// what it will do and to what; only a second post with confirm=yes acts.

// askPage is a confirmation: what will happen, and the form that does it.
type askPage struct {
	Lines  []string // what will happen, one sentence each
	Action string   // URL the confirmed form posts to
	Form   url.Values
	Button string
	Cancel string // URL back
	Groups []store.Group
	Choose bool // offer a group for the computers (move_to)
	Except string
}

func (s *Server) ask(w http.ResponseWriter, r *http.Request, title string, p *askPage) error {
	s.render(w, r, http.StatusOK, "ask", title, p)
	return nil
}

// consoleDeleteGroup deletes a group after a confirmation that says how many
// computers move out of it (and where to) and how many approvals go.
func (s *Server) consoleDeleteGroup(w http.ResponseWriter, r *http.Request) error {
	ctx, g := r.Context(), r.PathValue("group")
	if g == DefaultGroup {
		return errorf(http.StatusBadRequest, "the %s group cannot be deleted: new computers join it", DefaultGroup)
	}
	computers, approvals, err := s.groupRefs(ctx, g)
	if err != nil {
		return err
	}
	moveTo := r.PostForm.Get("move_to")
	if r.PostForm.Get("confirm") != "yes" {
		gs, err := s.st.ListGroups(ctx)
		if err != nil {
			return err
		}
		lines := []string{fmt.Sprintf("Delete group %s.", g)}
		if computers == 0 && approvals == 0 {
			lines = append(lines, "Nothing refers to it: no computers, no approvals.")
		} else {
			lines = append(lines, fmt.Sprintf("%d computers are in it: they move to the group chosen below and follow its approvals from their next check-in.", computers),
				fmt.Sprintf("%d approvals of this group are deleted (and removed from the signed site repository).", approvals))
		}
		return s.ask(w, r, "Delete group "+g, &askPage{Lines: lines, Action: "/console/groups/" + url.PathEscape(g) + "/delete",
			Form: url.Values{}, Button: "Delete group " + g, Cancel: "/console/groups", Groups: gs, Choose: true, Except: g})
	}
	if err := s.deleteGroup(ctx, g, moveTo); err != nil {
		return err
	}
	if moveTo == "" {
		moveTo = DefaultGroup
	}
	s.audit(r, viewerFrom(ctx).Subject, "console", "group.delete", g, fmt.Sprintf("%d computers to %s, %d approvals deleted", computers, moveTo, approvals))
	http.Redirect(w, r, "/console/groups", http.StatusSeeOther)
	return nil
}

// consoleComputerAction revokes, removes or approves (a pending
// enrollment) one computer, after a confirmation.
func (s *Server) consoleComputerAction(w http.ResponseWriter, r *http.Request) error {
	ctx, id, action := r.Context(), r.PathValue("id"), r.PathValue("action")
	c, err := s.st.Computer(ctx, id)
	if err != nil {
		return storeErr(err, "computer "+id)
	}
	var what string
	switch action {
	case "revoke":
		what = fmt.Sprintf("Revoke %s (%s): the server refuses its certificate from now on; it can come back only by enrolling again with a new token.", c.Hostname, id)
	case "remove":
		what = fmt.Sprintf("Remove %s (%s) and its reported states and history: if it still runs it is refused until it enrolls again.", c.Hostname, id)
	case "approve":
		if c.Status != store.AgentPending {
			return errorf(http.StatusConflict, "computer %s is %s, not pending approval", id, c.Status)
		}
		what = fmt.Sprintf("Let %s (%s) replace the other identities of machine %s, which are revoked.", c.Hostname, id, c.MachineID)
	default:
		return errorf(http.StatusNotFound, "no computer action %q: use revoke, remove or approve", action)
	}
	back := "/console/computers/" + url.PathEscape(id)
	if r.PostForm.Get("confirm") != "yes" {
		return s.ask(w, r, strings.ToUpper(action[:1])+action[1:]+" "+c.Hostname, &askPage{Lines: []string{what},
			Action: back + "/" + action, Form: url.Values{}, Button: strings.ToUpper(action[:1]) + action[1:] + " " + c.Hostname, Cancel: back})
	}
	by := viewerFrom(ctx).Subject
	switch action {
	case "revoke":
		err = s.st.SetAgentStatus(ctx, id, store.AgentRevoked, "revoked by "+by)
	case "remove":
		err = s.st.DeleteAgent(ctx, id)
		back = "/console/computers"
	case "approve":
		err = s.approvePending(ctx, &c.Agent, by)
	}
	if err != nil {
		return storeErr(err, "computer "+id)
	}
	s.audit(r, by, "console", "computer."+action, id, c.Hostname)
	http.Redirect(w, r, back, http.StatusSeeOther)
	return nil
}
