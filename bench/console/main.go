// Command console measures the console with a large fleet: it fills a real
// SQLite store with N computers (default 100,000) reporting through the
// store's own write path (which keeps the per-computer compliance figures
// current), then times the dashboard and filtered computer lists as the
// server answers them (the handler, without TLS or network), and the
// sqlite3 CLI running the dashboard's query on the same file as a peer.
// Not part of the test suite; bench/console/run.sh runs it.
package main

import (
	"context"
	"flag"
	"fmt"
	"html"
	"io"
	"log"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/bulwarkhq/bulwark/internal/server"
	"github.com/bulwarkhq/bulwark/internal/store"
	"github.com/bulwarkhq/bulwark/internal/store/sqlite"
	"github.com/bulwarkhq/bulwark/internal/store/sqlstore"
)

func main() {
	n := flag.Int("computers", 100000, "computers in the store")
	perAgent := flag.Int("states", 8, "update states each computer reports")
	runs := flag.Int("runs", 30, "requests timed per page")
	dir := flag.String("dir", "", "work directory (default: a new temp dir)")
	flag.Parse()
	if *dir == "" {
		d, err := os.MkdirTemp("", "bulwark-bench-console-")
		if err != nil {
			log.Fatal(err)
		}
		defer os.RemoveAll(d)
		*dir = d
	}
	ctx := context.Background()
	dbPath := filepath.Join(*dir, "console.db")
	st, err := sqlite.Open(ctx, dbPath)
	if err != nil {
		log.Fatal(err)
	}
	srv, first, err := server.Open(ctx, server.Config{DataDir: filepath.Join(*dir, "data"), PublicURL: "https://127.0.0.1:1", Store: st,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	fill := time.Now()
	ingest := populate(ctx, st, *n, *perAgent)
	fmt.Printf("fill: %d computers, %d states each, in %s (reports through ApplyReports: %s, %.0f reports/s)\n",
		*n, *perAgent, time.Since(fill).Round(time.Second), ingest.Round(time.Second), float64(*n)/ingest.Seconds())

	h := srv.Handler()
	cookie := signIn(h, first.AdminPassword)
	pages := []struct{ name, path string }{
		{"dashboard", "/console/"},
		{"computers, group + missing critical", "/console/computers?group=g03&missing=critical"},
		{"computers, failed installs, page 2", "/console/computers?failed=1&after=" + url.QueryEscape(afterCursor(h, cookie))},
		{"computers, hostname search", "/console/computers?q=host-0421"},
		{"computers, not seen 7 days", "/console/computers?stale=7"},
	}
	fmt.Println("| page | median | p95 | bytes |")
	fmt.Println("|---|---|---|---|")
	var dashMedian time.Duration
	for _, p := range pages {
		var ds []time.Duration
		var size int
		for range *runs {
			req := httptest.NewRequest("GET", "https://127.0.0.1:1"+p.path, nil)
			req.AddCookie(cookie)
			rec := httptest.NewRecorder()
			t := time.Now()
			h.ServeHTTP(rec, req)
			ds = append(ds, time.Since(t))
			if rec.Code != 200 {
				log.Fatalf("%s: %d %s", p.path, rec.Code, rec.Body.String())
			}
			size = rec.Body.Len()
		}
		med, p95 := quantiles(ds)
		if p.name == "dashboard" {
			dashMedian = med
		}
		fmt.Printf("| %s (`%s`) | %s | %s | %d |\n", p.name, p.path, ms(med), ms(p95), size)
	}

	// Peers, same file, same run: the sqlite3 CLI running the dashboard's
	// own query on the kept counts (process start included), and the query
	// a dashboard without kept counts would need (every state joined with
	// the index).
	st.Close()
	day := time.Now().Add(-7*24*time.Hour).UnixMilli() / 86400000
	kept := fmt.Sprintf(`SELECT g.name, c.computers, c.critical, c.important, c.other, c.failed, c.reboot, s.n, c.compliant FROM groups g
		LEFT JOIN group_compliance c ON c.grp = g.name LEFT JOIN (SELECT grp, SUM(n) AS n FROM group_seen WHERE day < %d GROUP BY grp) s ON s.grp = g.name
		ORDER BY g.name;`, day)
	scan := `SELECT a.grp, COUNT(DISTINCT a.id) FROM agents a JOIN agent_states s ON s.agent_id = a.id JOIN updates u ON u.vendor = s.vendor AND u.id = s.update_id
		WHERE s.state IN ('needed','downloaded','failed') AND u.severity = 'critical' GROUP BY a.grp;`
	cli := func(q string) time.Duration {
		var ds []time.Duration
		for range 10 {
			t := time.Now()
			if out, err := exec.Command("sqlite3", dbPath, q).CombinedOutput(); err != nil {
				log.Fatalf("sqlite3: %v %s", err, out)
			}
			ds = append(ds, time.Since(t))
		}
		med, _ := quantiles(ds)
		return med
	}
	keptT, scanT := cli(kept), cli(scan)
	fmt.Printf("\nPeer, same file, same run: the sqlite3 CLI running the dashboard's query on the kept counts: median %s, process start included "+
		"(bulwark's whole dashboard page, rendered: %.2f× that).\n", ms(keptT), float64(dashMedian)/float64(keptT))
	fmt.Printf("Without kept counts: the sqlite3 CLI counting computers missing a critical update from every state: median %s (%.0f× bulwark's dashboard page).\n",
		ms(scanT), float64(scanT)/float64(dashMedian))
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }

func quantiles(ds []time.Duration) (med, p95 time.Duration) {
	slices.Sort(ds)
	return ds[len(ds)/2], ds[(len(ds)*95)/100]
}

// populate makes 20 groups, 200 updates and n computers, and sends each
// computer's report through ApplyReports in batches of 500 (the server's
// group commit size).
func populate(ctx context.Context, st *sqlstore.DB, n, perAgent int) time.Duration {
	now := time.Now()
	for g := range 20 {
		if err := st.CreateGroup(ctx, fmt.Sprintf("g%02d", g), now); err != nil {
			log.Fatal(err)
		}
	}
	sevs := []string{"critical", "important", "moderate", "low"}
	var us []store.Update
	for i := range 200 {
		us = append(us, store.Update{Vendor: "debian", ID: fmt.Sprintf("BW-%04d", i), Title: "update", Product: "debian-12", Classification: "security",
			Severity: sevs[i%len(sevs)], SHA256: "x", IndexedAt: now})
	}
	if err := st.UpsertUpdates(ctx, us); err != nil {
		log.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	states := []string{"installed", "installed", "installed", "not-applicable", "needed", "failed", "installed-pending-reboot", "downloaded"}
	// Computers are inserted in one transaction (enrollment is not what is
	// measured); their reports then go through the store's write path.
	tx, err := st.SQL().BeginTx(ctx, nil)
	if err != nil {
		log.Fatal(err)
	}
	for i := range n {
		if _, err := tx.ExecContext(ctx, `INSERT INTO agents (id, machine_id, hostname, os, arch, grp, cert_serial, status, enrolled_at, last_seen)
			VALUES ($1,$2,$3,'debian 12','amd64',$4,'s','active',$5,$6)`, fmt.Sprintf("agt-%06d", i), fmt.Sprintf("%032x", i), fmt.Sprintf("host-%06d", i),
			fmt.Sprintf("g%02d", i%20), now.UnixMilli(), now.Add(-time.Duration(rng.IntN(30*24))*time.Hour).UnixMilli()); err != nil {
			log.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		log.Fatal(err)
	}
	start := time.Now()
	var batch []*store.Report
	for i := range n {
		r := &store.Report{AgentID: fmt.Sprintf("agt-%06d", i), BatchID: "b1", ReceivedAt: now.Add(-time.Duration(rng.IntN(30*24)) * time.Hour)}
		for _, u := range rng.Perm(len(us))[:perAgent] {
			r.Changes = append(r.Changes, store.UpdateState{Vendor: "debian", UpdateID: us[u].ID, State: states[rng.IntN(len(states))], UpdatedAt: now})
		}
		batch = append(batch, r)
		if len(batch) == 500 || i == n-1 {
			if _, err := st.ApplyReports(ctx, batch); err != nil {
				log.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	return time.Since(start)
}

// signIn gets a session cookie for the first admin through the sign-in form.
func signIn(h http.Handler, password string) *http.Cookie {
	form := url.Values{"name": {"admin"}, "password": {password}}
	req := httptest.NewRequest("POST", "https://127.0.0.1:1/console/signin", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	for _, c := range rec.Result().Cookies() {
		if c.Value != "" {
			return c
		}
	}
	b, _ := io.ReadAll(rec.Body)
	log.Fatalf("sign in: %d %s", rec.Code, b)
	return nil
}

// afterCursor reads the next-page cursor of the failed-installs list.
func afterCursor(h http.Handler, c *http.Cookie) string {
	req := httptest.NewRequest("GET", "https://127.0.0.1:1/console/computers?failed=1", nil)
	req.AddCookie(c)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	body := rec.Body.String()
	i := strings.Index(body, `rel="next" href="`)
	if i < 0 {
		log.Fatal("no next page in the failed-installs list")
	}
	next, _, _ := strings.Cut(body[i+len(`rel="next" href="`):], `"`)
	u, err := url.Parse(html.UnescapeString(next))
	if err != nil {
		log.Fatal(err)
	}
	return u.Query().Get("after")
}
