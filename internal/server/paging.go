package server

import (
	"cmp"
	"encoding/base64"
	"net/http"
	"slices"
	"strconv"
)

// Cursor paging for the API's and the console's lists: a request gives
// limit (1 to 1000) and after (the next value of the previous page, an
// opaque cursor); an answer with more behind it carries next. Lists
// ordered newest first (the audit log, sync history) take before=ID
// instead. Computers page in the store (hostname, id); the lists below
// page in the server over the store's whole list, sorted by a unique key.

// pageReq is one page's cursor and size.
type pageReq struct {
	After string // the key of the last item of the previous page
	Limit int
}

const (
	maxPageLimit   = 1000
	defaultAPIPage = 100
)

// pageParams reads limit (default def) and after from a request.
func pageParams(r *http.Request, def int) (pageReq, error) {
	p := pageReq{Limit: def}
	q := r.URL.Query()
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxPageLimit {
			return p, errorf(http.StatusBadRequest, "limit %q: use 1 to %d", v, maxPageLimit)
		}
		p.Limit = n
	}
	if v := q.Get("after"); v != "" {
		b, err := base64.RawURLEncoding.DecodeString(v)
		if err != nil || len(b) == 0 {
			return p, errorf(http.StatusBadRequest, "after %q: use the next value of the previous page", v)
		}
		p.After = string(b)
	}
	return p, nil
}

// paginate returns the items whose key sorts after p.After, at most
// p.Limit of them in key order, and the cursor of the next page ("" when
// none is left). Keys must be unique.
func paginate[T any](items []T, key func(T) string, p pageReq) ([]T, string) {
	items = slices.Clone(items)
	slices.SortFunc(items, func(a, b T) int { return cmp.Compare(key(a), key(b)) })
	start := 0
	if p.After != "" {
		start, _ = slices.BinarySearchFunc(items, p.After, func(it T, k string) int {
			if key(it) <= k {
				return -1
			}
			return 1
		})
	}
	rest := items[start:]
	if len(rest) <= p.Limit {
		return rest, ""
	}
	page := rest[:p.Limit]
	return page, base64.RawURLEncoding.EncodeToString([]byte(key(page[len(page)-1])))
}

// listAnswer is a list's JSON answer: the items under name and, when more
// follow, next.
func listAnswer(name string, items any, next string) map[string]any {
	m := map[string]any{name: items}
	if next != "" {
		m["next"] = next
	}
	return m
}
