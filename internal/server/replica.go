package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/bulwarkhq/bulwark/internal/store"
)

// Upstream modes.
const (
	ModeAutonomous = "autonomous" // keeps its own groups and approvals
	ModeReplica    = "replica"    // inherits groups and approvals from the upstream
)

// maxReplicaBody caps each upstream API answer a replica reads.
const maxReplicaBody = 16 << 20

func (s *Server) replica() bool {
	return s.cfg.Upstream != nil && s.cfg.Upstream.Mode == ModeReplica
}

// refuseInReplica answers admin writes that a replica takes from its
// upstream.
func (s *Server) refuseInReplica() error {
	if s.replica() {
		return errorf(http.StatusConflict, "this server is a replica of %s: change groups and approvals there", s.cfg.Upstream.URL)
	}
	return nil
}

// upstreamGet reads one admin API answer from the upstream with the
// replica's (viewer) token.
func (s *Server) upstreamGet(ctx context.Context, hc *http.Client, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, "GET", s.cfg.Upstream.URL+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+s.cfg.Upstream.Token)
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxReplicaBody+1))
	if err != nil {
		return err
	}
	if len(b) > maxReplicaBody {
		return fmt.Errorf("GET %s: answer over the %d byte limit", path, maxReplicaBody)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: HTTP %d: %s", path, resp.StatusCode, b)
	}
	return json.Unmarshal(b, v)
}

// replicaPageLimit is the page size a replica asks the upstream for.
var replicaPageLimit = maxPageLimit

// upstreamList reads every page of one of the upstream's lists (the items
// under field, following next), so a replica never takes the first page
// for the whole list. An upstream from before paging answers everything
// at once without next.
func upstreamList[T any](ctx context.Context, s *Server, hc *http.Client, path, field string, out *[]T) error {
	after := ""
	for pages := 0; ; pages++ {
		q := url.Values{"limit": {strconv.Itoa(replicaPageLimit)}}
		if after != "" {
			q.Set("after", after)
		}
		var page map[string]json.RawMessage
		if err := s.upstreamGet(ctx, hc, path+"?"+q.Encode(), &page); err != nil {
			return err
		}
		var items []T
		if raw, ok := page[field]; ok {
			if err := json.Unmarshal(raw, &items); err != nil {
				return fmt.Errorf("GET %s: %s: %w", path, field, err)
			}
		}
		*out = append(*out, items...)
		var next string
		if raw, ok := page["next"]; ok {
			if err := json.Unmarshal(raw, &next); err != nil {
				return fmt.Errorf("GET %s: next: %w", path, err)
			}
		}
		if next == "" {
			return nil
		}
		if next == after || len(items) == 0 || pages > 100000 {
			return fmt.Errorf("GET %s: the upstream's next cursor does not advance", path)
		}
		after = next
	}
}

// replicate makes this server's groups and approvals those of the upstream.
// Each approval's targets are still read from the vendor metadata this
// server verified, and the result is signed by this server's site
// repository: the upstream decides what is approved, never which bytes.
func (s *Server) replicate(ctx context.Context) (changed bool, err error) {
	hc, err := s.upstreamClient()
	if err != nil {
		return false, err
	}
	var groups []store.Group
	if err := upstreamList(ctx, s, hc, "/api/v1/groups", "groups", &groups); err != nil {
		return false, err
	}
	want := map[string][]store.Approval{}
	for _, g := range groups {
		if checkName("group", g.Name) != nil {
			return false, fmt.Errorf("upstream group %q is not a valid group name", g.Name)
		}
		var aps []store.Approval
		if err := upstreamList(ctx, s, hc, "/api/v1/groups/"+url.PathEscape(g.Name)+"/approvals", "approvals", &aps); err != nil {
			return false, err
		}
		want[g.Name] = aps
	}
	unlock, err := s.lockSite(ctx)
	if err != nil {
		return false, err
	}
	defer unlock()
	defer s.forgetApprovals()
	now := s.now()
	have, err := s.st.ListGroups(ctx)
	if err != nil {
		return false, err
	}
	for _, g := range have {
		if _, ok := want[g.Name]; !ok && g.Name != DefaultGroup {
			if err := s.st.DeleteGroup(ctx, g.Name, DefaultGroup); err != nil {
				return changed, err
			}
			if err := s.site.RemoveGroup(ctx, g.Name); err != nil {
				return changed, err
			}
			changed = true
		}
	}
	for g, aps := range want {
		if err := s.st.CreateGroup(ctx, g, now); err == nil {
			changed = true
		} else if !errors.Is(err, store.ErrExists) {
			return changed, err
		}
		cur, err := s.st.Approvals(ctx, g)
		if err != nil {
			return changed, err
		}
		key := func(a store.Approval) string { return a.Vendor + "/" + a.UpdateID }
		wantKeys := map[string]bool{}
		for _, a := range aps {
			if _, ok := s.repos[a.Vendor]; !ok {
				s.log.Warn("replica: upstream approval names a vendor repository not synced here", "group", g, "vendor", a.Vendor, "update", a.UpdateID)
				continue
			}
			wantKeys[key(a)] = true
			i := slices.IndexFunc(cur, func(c store.Approval) bool { return key(c) == key(a) })
			if i >= 0 && cur[i].Action == a.Action && cur[i].Rollout == a.Rollout && equalTime(cur[i].Deadline, a.Deadline) {
				continue
			}
			na := &store.Approval{Group: g, Vendor: a.Vendor, UpdateID: a.UpdateID, Action: a.Action, Deadline: a.Deadline,
				Rollout: a.Rollout, By: "upstream", UpdatedAt: now}
			if err := (&ApprovalRequest{Action: na.Action, Rollout: na.Rollout}).validate(now); err != nil {
				return changed, fmt.Errorf("upstream approval %s in %s: %w", key(a), g, err)
			}
			if err := s.st.SetApproval(ctx, na); err != nil {
				return changed, err
			}
			changed = true
		}
		for _, c := range cur {
			if !wantKeys[key(c)] {
				if err := s.st.DeleteApproval(ctx, g, c.Vendor, c.UpdateID); err != nil {
					return changed, err
				}
				changed = true
			}
		}
		if err := s.publishApprovals(ctx, g); err != nil {
			return changed, fmt.Errorf("group %s: %w", g, err)
		}
	}
	return changed, nil
}

func equalTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return a.Equal(*b)
}
