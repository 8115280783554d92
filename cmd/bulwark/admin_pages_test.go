//go:build !agentonly

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
)

// TestAdminListFollowsNext: a list command reads every page of a paged
// answer (after=next until no next), keeps the other fields and the
// query, and drops next.
func TestAdminListFollowsNext(t *testing.T) {
	const total, page = 7, 3
	var queries []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		queries = append(queries, r.URL.RawQuery)
		start := 0
		if a := r.URL.Query().Get("after"); a != "" {
			start, _ = strconv.Atoi(a)
		}
		resp := map[string]any{"group": "web"}
		var items []map[string]string
		for i := start; i < total && i < start+page; i++ {
			items = append(items, map[string]string{"id": fmt.Sprintf("u%d", i)})
		}
		resp["approvals"] = items
		if start+page < total {
			resp["next"] = strconv.Itoa(start + page)
		}
		json.NewEncoder(w).Encode(resp)
	}))
	defer srv.Close()
	c := &apiClient{base: srv.URL, token: "t", hc: srv.Client()}
	var first json.RawMessage
	if err := c.do(context.Background(), "GET", "/api/v1/groups/web/approvals?kind=x", nil, &first); err != nil {
		t.Fatal(err)
	}
	all, err := c.rest(context.Background(), "/api/v1/groups/web/approvals?kind=x", first)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Group     string
		Approvals []struct{ ID string }
		Next      *string
	}
	if err := json.Unmarshal(all, &got); err != nil {
		t.Fatal(err)
	}
	if got.Group != "web" || len(got.Approvals) != total || got.Approvals[0].ID != "u0" || got.Approvals[total-1].ID != "u6" || got.Next != nil {
		t.Fatalf("joined answer: %s", all)
	}
	if len(queries) != 3 || queries[1] != "after=3&kind=x" || queries[2] != "after=6&kind=x" {
		t.Fatalf("queries: %q", queries)
	}
	// An answer without next is returned as it is.
	one := json.RawMessage(`{"groups":[{"name":"a"}]}`)
	if same, err := c.rest(context.Background(), "/api/v1/groups", one); err != nil || string(same) != string(one) {
		t.Fatalf("single page: %s %v", same, err)
	}
}
