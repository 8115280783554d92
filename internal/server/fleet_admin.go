package server

import (
	"context"
	"net/http"

	"github.com/bulwarkhq/bulwark/internal/store"
)

// Fleet changes the admin API and the console share: deleting a group,
// approving a pending enrollment.

// deleteGroup deletes group g: its approvals go, its computers move to
// moveTo ("" = default), and its signed approvals document is removed from
// the site repository. The default group cannot be deleted: new computers
// join it.
func (s *Server) deleteGroup(ctx context.Context, g, moveTo string) error {
	if err := s.refuseInReplica(); err != nil {
		return err
	}
	if moveTo == "" {
		moveTo = DefaultGroup
	}
	if g == DefaultGroup {
		return errorf(http.StatusBadRequest, "the %s group cannot be deleted: new computers join it", DefaultGroup)
	}
	if err := checkName("move_to group", moveTo); err != nil {
		return err
	}
	if moveTo == g {
		return errorf(http.StatusBadRequest, "move_to names the group being deleted")
	}
	unlock, err := s.lockSite(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	if _, err := s.st.Approvals(ctx, moveTo); err != nil {
		return storeErr(err, "group "+moveTo)
	}
	if err := s.st.DeleteGroup(ctx, g, moveTo); err != nil {
		return storeErr(err, "group "+g)
	}
	defer s.forgetApprovals()
	return s.site.RemoveGroup(ctx, g)
}

// groupRefs counts what refers to group g: its computers and approvals.
func (s *Server) groupRefs(ctx context.Context, g string) (computers, approvals int, err error) {
	aps, err := s.st.Approvals(ctx, g)
	if err != nil {
		return 0, 0, storeErr(err, "group "+g)
	}
	n, err := s.st.CountComputers(ctx, store.ComputerFilter{Group: g})
	return n, len(aps), err
}

// approvePending lets a pending enrollment (F2) replace the other
// identities of its machine id, which are revoked.
func (s *Server) approvePending(ctx context.Context, a *store.Agent, by string) error {
	if a.Status != store.AgentPending {
		return errorf(http.StatusConflict, "computer %s is %s, not pending approval", a.ID, a.Status)
	}
	others, err := s.st.AgentsByMachine(ctx, a.MachineID)
	if err != nil {
		return err
	}
	for _, o := range others {
		if o.ID != a.ID && o.Status != store.AgentRevoked {
			if err := s.st.SetAgentStatus(ctx, o.ID, store.AgentRevoked, "replaced by "+a.ID+", approved by "+by); err != nil {
				return err
			}
		}
	}
	return storeErr(s.st.SetAgentStatus(ctx, a.ID, store.AgentActive, ""), "computer "+a.ID)
}
