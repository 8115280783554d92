package server

import (
	"context"
	"net/http"

	"github.com/bulwarkhq/bulwark/internal/approval"
	"github.com/bulwarkhq/bulwark/internal/store"
)

// Fleet operations the admin API and the console share.

// createGroup makes a group and its (empty) signed approvals.
func (s *Server) createGroup(ctx context.Context, name string) error {
	if err := s.refuseInReplica(); err != nil {
		return err
	}
	if err := checkName("group", name); err != nil {
		return err
	}
	unlock, err := s.lockSite(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	if err := s.st.CreateGroup(ctx, name, s.now()); err != nil {
		return storeErr(err, "group "+name)
	}
	defer s.forgetApprovals()
	return s.site.SetApprovals(ctx, &approval.Document{Group: name})
}

// renameGroup renames a group with its computers, approvals and enrollment
// tokens, and moves its signed approvals to the new name.
func (s *Server) renameGroup(ctx context.Context, from, to string) error {
	if err := s.refuseInReplica(); err != nil {
		return err
	}
	if err := checkName("group", to); err != nil {
		return err
	}
	if from == DefaultGroup {
		return errorf(http.StatusBadRequest, "the %s group cannot be renamed: new computers join it", DefaultGroup)
	}
	unlock, err := s.lockSite(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	if err := s.st.RenameGroup(ctx, from, to); err != nil {
		return storeErr(err, "group")
	}
	defer s.forgetApprovals()
	if err := s.publishApprovals(ctx, to); err != nil {
		return err
	}
	return s.site.RemoveGroup(ctx, from)
}

// moveComputers puts computers in an existing group.
func (s *Server) moveComputers(ctx context.Context, ids []string, group string) error {
	if len(ids) == 0 || len(ids) > 1000 {
		return errorf(http.StatusBadRequest, "computers: list 1 to 1000 computer ids")
	}
	if _, err := s.st.Approvals(ctx, group); err != nil {
		return storeErr(err, "group "+group)
	}
	return storeErr(s.st.MoveAgents(ctx, ids, group), "computer")
}

// putApproval checks that the update exists in the vendor's verified
// metadata (nothing is approved, or declined, by name alone), stores the
// approval and signs the group's approvals again.
func (s *Server) putApproval(ctx context.Context, a *store.Approval) error {
	if err := s.refuseInReplica(); err != nil {
		return err
	}
	rp, ok := s.repos[a.Vendor]
	if !ok {
		return errorf(http.StatusNotFound, "no vendor repository %q", a.Vendor)
	}
	if _, _, err := s.updateTargets(ctx, rp, a.UpdateID); err != nil {
		return err
	}
	unlock, err := s.lockSite(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	if err := s.st.SetApproval(ctx, a); err != nil {
		return storeErr(err, "group "+a.Group)
	}
	return s.publishApprovals(ctx, a.Group)
}

// removeApproval removes an approval and signs the group's approvals again.
func (s *Server) removeApproval(ctx context.Context, group, vendor, id string) error {
	if err := s.refuseInReplica(); err != nil {
		return err
	}
	unlock, err := s.lockSite(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	if err := s.st.DeleteApproval(ctx, group, vendor, id); err != nil {
		return storeErr(err, "approval")
	}
	return s.publishApprovals(ctx, group)
}
