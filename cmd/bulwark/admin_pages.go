//go:build !agentonly

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
)

// rest reads the pages after first of a paged list (the API answers a
// page at a time with a cursor in next, passed back as after) and returns
// one answer with every item: each array in the pages is joined and next
// dropped. An answer without next is returned as it is.
func (c *apiClient) rest(ctx context.Context, path string, first json.RawMessage) (json.RawMessage, error) {
	var all map[string]json.RawMessage
	if err := json.Unmarshal(first, &all); err != nil {
		return first, nil // not an object: not a list
	}
	lists := map[string][]json.RawMessage{}
	for pages := 0; ; pages++ {
		var next string
		if raw, ok := all["next"]; ok {
			if err := json.Unmarshal(raw, &next); err != nil {
				return nil, fmt.Errorf("GET %s: next: %w", path, err)
			}
		}
		if next == "" {
			break
		}
		if pages > 100000 {
			return nil, fmt.Errorf("GET %s: the server's next cursor does not end", path)
		}
		p, q, _ := strings.Cut(path, "?")
		v, err := url.ParseQuery(q)
		if err != nil {
			return nil, err
		}
		v.Set("after", next)
		var page map[string]json.RawMessage
		if err := c.do(ctx, "GET", p+"?"+v.Encode(), nil, &page); err != nil {
			return nil, err
		}
		for k, raw := range page {
			var items []json.RawMessage
			if k == "next" || json.Unmarshal(raw, &items) != nil {
				continue
			}
			lists[k] = append(lists[k], items...)
		}
		all["next"] = page["next"]
		if _, ok := page["next"]; !ok {
			delete(all, "next")
		}
	}
	if len(lists) == 0 {
		return first, nil
	}
	for k, more := range lists {
		var items []json.RawMessage
		if err := json.Unmarshal(all[k], &items); err != nil {
			return nil, fmt.Errorf("GET %s: %s: %w", path, k, err)
		}
		b, err := json.Marshal(append(items, more...))
		if err != nil {
			return nil, err
		}
		all[k] = b
	}
	return json.Marshal(all)
}
