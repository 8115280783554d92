// Command fleet is a load generator for the update server: N simulated
// agents, each with a real client certificate issued by the site CA (a bulk
// path: the certificates are signed here with the data directory's CA key
// and the agents inserted into the store directly, instead of N
// enrollments), speaking the real agent protocol (check-in with
// If-None-Match/ETag, reports of state changes) from distinct loopback
// addresses. It also measures the server process (CPU, RSS) from /proc.
//
//	fleet setup -data DIR [-database URL] -n N
//	fleet storm -data DIR -url https://127.0.0.1:PORT -n N -c 64 -pid PID
//	fleet keepalive -data DIR -url … -conns 64 -d 10s -pid PID
//	fleet history -dir DIR -n N -days D   (database size with D days of reports)
//	fleet steady -data DIR -url … -n 100000 -d 2m -pid PID   (scenario (a) in real time)
//	fleet enroll -data DIR -url … -token-file F -n N -c 32 -src 127.0.0.2 -pid PID
//	      (N real enrollments, each a new key, CSR and TLS connection, all
//	      from the one source address: machines behind one NAT address)
//
// Not part of the test suite: bench/fleet/run.sh drives it.
package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bulwarkhq/bulwark/internal/pki"
	"github.com/bulwarkhq/bulwark/internal/store"
	"github.com/bulwarkhq/bulwark/internal/store/postgres"
	"github.com/bulwarkhq/bulwark/internal/store/sqlite"
	"github.com/bulwarkhq/bulwark/internal/store/sqlstore"
	"github.com/bulwarkhq/bulwark/internal/wire"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: fleet setup|storm|keepalive [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "setup":
		err = setup(os.Args[2:])
	case "storm":
		err = storm(os.Args[2:])
	case "keepalive":
		err = keepalive(os.Args[2:])
	case "history":
		err = history(os.Args[2:])
	case "enroll":
		err = enroll(os.Args[2:])
	case "steady":
		err = steady(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "fleet:", err)
		os.Exit(1)
	}
}

// fleetFile holds the simulated agents: the shared key and, per agent, its
// id, machine id and certificate.
const fleetFile = "fleet.bin"

type agent struct {
	id, machine string
	cert        []byte // DER
}

func openStore(ctx context.Context, data, database string) (*sqlstore.DB, error) {
	if database != "" {
		db, err := postgres.Open(ctx, database)
		if err != nil {
			return nil, err
		}
		return db.DB, nil
	}
	return sqlite.Open(ctx, filepath.Join(data, "bulwark.db"))
}

// setup issues n agent certificates with the data directory's site CA and
// inserts the agents and five indexed updates into the store.
func setup(args []string) error {
	fs := flag.NewFlagSet("setup", flag.ExitOnError)
	data := fs.String("data", "", "server data directory (stopped server)")
	database := fs.String("database", "", "PostgreSQL URL (default SQLite in the data directory)")
	n := fs.Int("n", 1000, "agents")
	fs.Parse(args)
	ctx := context.Background()
	m, _, err := pki.LoadOrCreate(filepath.Join(*data, "tls"), pki.Options{})
	if err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	csrDER, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "bench"}}, key)
	if err != nil {
		return err
	}
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		return err
	}
	st, err := openStore(ctx, *data, *database)
	if err != nil {
		return err
	}
	defer st.Close()
	now := time.Now()
	var buf bytes.Buffer
	keyDER, _ := x509.MarshalECPrivateKey(key)
	writeBlob(&buf, keyDER)
	// Rows go in by 500, one statement and transaction each: every agent
	// row's trigger updates its group's counters, and PostgreSQL walks
	// every earlier version of that row made in the same transaction, so
	// 100,000 rows in one transaction, one round trip each, took many
	// minutes.
	const perInsert = 500
	var rows []any
	insert := func() error {
		if len(rows) == 0 {
			return nil
		}
		var q strings.Builder
		q.WriteString(`INSERT INTO agents (id, machine_id, hostname, os, arch, grp, cert_serial, status, enrolled_at, last_seen) VALUES `)
		for r := range len(rows) / 5 {
			if r > 0 {
				q.WriteByte(',')
			}
			b := r * 5
			fmt.Fprintf(&q, "($%d,$%d,$%d,'debian 12','amd64','default',$%d,'active',$%d,$%d)", b+1, b+2, b+3, b+4, b+5, b+5)
		}
		_, err := st.SQL().ExecContext(ctx, q.String(), rows...)
		rows = rows[:0]
		return err
	}
	start := time.Now()
	for i := range *n {
		id := fmt.Sprintf("agt-bench-%07d", i)
		machine := fmt.Sprintf("%032x", i+1)
		certPEM, serial, err := m.CA.SignAgent(csr, id, now)
		if err != nil {
			return err
		}
		blk, _ := pem.Decode(certPEM)
		if blk == nil {
			return fmt.Errorf("agent %s: no certificate", id)
		}
		rows = append(rows, id, machine, "host-"+strconv.Itoa(i), serial, now.Add(-23*time.Hour).UnixMilli())
		if len(rows) == 5*perInsert {
			if err := insert(); err != nil {
				return err
			}
		}
		writeBlob(&buf, []byte(id))
		writeBlob(&buf, []byte(machine))
		writeBlob(&buf, blk.Bytes)
	}
	if err := insert(); err != nil {
		return err
	}
	var ups []store.Update
	for i := 1; i <= 5; i++ {
		ups = append(ups, store.Update{Vendor: "bench", ID: fmt.Sprintf("BW-%d", i), Title: "bench", Product: "debian-12",
			Classification: "security", Severity: "critical", Released: "2026-11-30", SHA256: "x", IndexedAt: now})
	}
	if err := st.UpsertUpdates(ctx, ups); err != nil {
		return err
	}
	fmt.Printf("setup: %d agents issued and stored in %.1f s\n", *n, time.Since(start).Seconds())
	return os.WriteFile(filepath.Join(*data, fleetFile), buf.Bytes(), 0o600)
}

func writeBlob(w *bytes.Buffer, b []byte) {
	var l [4]byte
	binary.BigEndian.PutUint32(l[:], uint32(len(b)))
	w.Write(l[:])
	w.Write(b)
}

func loadFleet(data string) (*ecdsa.PrivateKey, []agent, error) {
	b, err := os.ReadFile(filepath.Join(data, fleetFile))
	if err != nil {
		return nil, nil, err
	}
	next := func() []byte {
		l := binary.BigEndian.Uint32(b)
		v := b[4 : 4+l]
		b = b[4+l:]
		return v
	}
	key, err := x509.ParseECPrivateKey(next())
	if err != nil {
		return nil, nil, err
	}
	var out []agent
	for len(b) > 0 {
		out = append(out, agent{id: string(next()), machine: string(next()), cert: next()})
	}
	return key, out, nil
}

// client is one agent's HTTPS client from its own loopback address, through
// net/http's Transport (HTTP/2, and the scenarios that keep a client).
func (a agent) client(i int, key *ecdsa.PrivateKey, pool *x509.CertPool, o clientOpts) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: loopback(i)}, Timeout: 30 * time.Second}
	tr := &http.Transport{DialContext: d.DialContext, TLSClientConfig: a.tlsConfig(key, pool, o), ForceAttemptHTTP2: o.h2,
		MaxIdleConnsPerHost: 1, IdleConnTimeout: time.Minute}
	if !o.h2 {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	return &http.Client{Transport: tr, Timeout: 60 * time.Second}
}

type clientOpts struct {
	h2, x25519 bool
	sessions   tls.ClientSessionCache
}

// loopback is agent i's source address: 127.1.0.0 upwards, one per agent.
func loopback(i int) net.IP { return net.IPv4(127, byte(1+i>>16), byte(i>>8), byte(i)) }

func caPool(data string) (*x509.CertPool, error) {
	b, err := os.ReadFile(filepath.Join(data, "tls", "ca.crt"))
	if err != nil {
		return nil, err
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("no CA certificate in %s", filepath.Join(data, "tls", "ca.crt"))
	}
	return p, nil
}

// reportBody is a report of five state changes with batch id batch.
func reportBody(batch string) []byte {
	now := time.Now().UTC()
	rep := wire.ReportRequest{BatchID: batch}
	for i := 1; i <= 5; i++ {
		rep.Changes = append(rep.Changes, wire.StateChange{Key: "bench/BW-" + strconv.Itoa(i), State: "installed", Time: now})
	}
	body, _ := json.Marshal(rep)
	return body
}

// cycle is one agent's full check-in: a check-in answered 200 and a report
// of five state changes, on one connection.
func cycle(c agentClient, batch string) error {
	code, _, err := c.do("GET", "/agent/v1/checkin", "", nil)
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		return fmt.Errorf("check-in %s: %d", c.agent().id, code)
	}
	code, _, err = c.do("POST", "/agent/v1/report", "", reportBody(batch))
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		return fmt.Errorf("report %s: %d", c.agent().id, code)
	}
	return nil
}

// checkin is one check-in, with If-None-Match when etag is set; it
// returns the answer's ETag and status.
func checkin(c agentClient, etag string) (string, int, error) {
	code, newETag, err := c.do("GET", "/agent/v1/checkin", etag, nil)
	return newETag, code, err
}

// proc is a process's CPU time and memory from /proc.
type proc struct {
	cpu      time.Duration
	rss, hwm int64 // bytes
}

func readProc(pids []int) proc {
	var p proc
	for _, pid := range pids {
		if pid == 0 {
			continue
		}
		if _, cpu, ok := procStat(pid); ok {
			p.cpu += cpu
		}
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		for _, l := range strings.Split(string(b), "\n") {
			var kb int64
			if _, err := fmt.Sscanf(l, "VmRSS: %d kB", &kb); err == nil {
				p.rss += kb << 10
			}
			if _, err := fmt.Sscanf(l, "VmHWM: %d kB", &kb); err == nil {
				p.hwm += kb << 10
			}
		}
	}
	return p
}

// procStat is process pid's parent and CPU time (user and system) from
// /proc/PID/stat.
func procStat(pid int) (ppid int, cpu time.Duration, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, false
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	ppid, _ = strconv.Atoi(f[1])
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return ppid, time.Duration(ut+st) * 10 * time.Millisecond, true // USER_HZ 100
}

// treeCPU is the CPU time of process pid and of each of its child
// processes (a PostgreSQL postmaster and its backends), by process id.
func treeCPU(pid int) map[int]time.Duration {
	out := map[int]time.Duration{}
	if pid == 0 {
		return out
	}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid, cpu, ok := procStat(p); ok && (p == pid || ppid == pid) {
			out[p] = cpu
		}
	}
	return out
}

// treeDelta is the CPU the processes of after used since before (a
// process new in after counts whole; one that ended between is lost, which
// a pooled database connection does not do).
func treeDelta(before, after map[int]time.Duration) time.Duration {
	var d time.Duration
	for pid, t := range after {
		d += t - before[pid]
	}
	return d
}

func parsePIDs(s string) []int {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(f)); err == nil {
			out = append(out, n)
		}
	}
	return out
}

// result is one scenario's figures, printed as JSON for run.sh.
type result struct {
	Name        string  `json:"name"`
	Target      string  `json:"target"`
	Agents      int     `json:"agents"`
	Errors      int64   `json:"errors"`
	Seconds     float64 `json:"seconds"`
	PerSecond   float64 `json:"per_second"`
	P50ms       float64 `json:"p50_ms"`
	P99ms       float64 `json:"p99_ms"`
	CPUms       float64 `json:"server_cpu_ms_per_op"`
	DBCPUms     float64 `json:"db_cpu_ms_per_op,omitempty"`
	RSSMiB      float64 `json:"server_rss_mib"`
	PeakRSSMiB  float64 `json:"server_peak_rss_mib"`
	Resumed     int64   `json:"tls_resumed"`
	FirstErrors string  `json:"first_error,omitempty"`
}

func storm(args []string) error {
	fs := flag.NewFlagSet("storm", flag.ExitOnError)
	data := fs.String("data", "", "server data directory (fleet setup ran)")
	url := fs.String("url", "", "server base URL")
	target := fs.String("target", "bulwark", "label of the target")
	n := fs.Int("n", 0, "agents (default all)")
	offset := fs.Int("offset", 0, "first agent")
	conc := fs.Int("c", 64, "agents at once")
	pids := fs.String("pid", "", "server process ids to measure, comma-separated")
	dbpid := fs.Int("dbpid", 0, "database server process id (PostgreSQL's postmaster): its CPU and its children's per cycle")
	h2 := fs.Bool("h2", false, "HTTP/2 (default HTTP/1.1)")
	x25519 := fs.Bool("x25519", false, "X25519 only (default Go's preference, X25519MLKEM768 first)")
	resume := fs.Bool("resume", false, "agents keep a TLS session cache as the agent does: two measured passes, new sessions (\"cold\") then resumed (\"result\")")
	batch := fs.String("batch", "storm", "report batch id prefix")
	urls := fs.String("urls", "", "comma-separated server URLs: agent i uses urls[i % len] (replicas)")
	fs.Parse(args)
	key, agents, err := loadFleet(*data)
	if err != nil {
		return err
	}
	agents = agents[*offset:]
	if *n > 0 && *n < len(agents) {
		agents = agents[:*n]
	}
	pool, err := caPool(*data)
	if err != nil {
		return err
	}
	targets := []string{*url}
	if *urls != "" {
		targets = strings.Split(*urls, ",")
	}
	ctx := context.Background()
	lat := make([]time.Duration, len(agents))
	var errs, resumed atomic.Int64
	var firstErr atomic.Value
	fail := func(err error) {
		errs.Add(1)
		firstErr.CompareAndSwap(nil, err.Error())
	}
	// pass runs fn for every agent on conc workers.
	pass := func(fn func(i int)) {
		var next atomic.Int64
		var wg sync.WaitGroup
		for range *conc {
			wg.Go(func() {
				for {
					i := int(next.Add(1) - 1)
					if i >= len(agents) {
						return
					}
					fn(i)
				}
			})
		}
		wg.Wait()
	}
	opts := func(i int) clientOpts { return clientOpts{h2: *h2, x25519: *x25519} }
	if *resume {
		// Each agent keeps a TLS session cache, as the agent does: the
		// first pass (new sessions) leaves it a session to resume in the
		// second, as an agent that checked in before has one.
		caches := make([]tls.ClientSessionCache, len(agents))
		for i := range caches {
			caches[i] = tls.NewLRUClientSessionCache(1)
		}
		opts = func(i int) clientOpts { return clientOpts{h2: *h2, x25519: *x25519, sessions: caches[i]} }
	}
	// measured runs one measured pass of every agent's cycle.
	measured := func(name, batch string) result {
		errs.Store(0)
		resumed.Store(0)
		before, dbBefore := readProc(parsePIDs(*pids)), treeCPU(*dbpid)
		start := time.Now()
		pass(func(i int) {
			t := time.Now()
			didResume, err := stormCycle(ctx, agents[i], *offset+i, targets[i%len(targets)], batch, key, pool, opts(i))
			if err != nil {
				fail(err)
			}
			lat[i] = time.Since(t)
			if didResume {
				resumed.Add(1)
			}
		})
		el := time.Since(start)
		after, dbAfter := readProc(parsePIDs(*pids)), treeCPU(*dbpid)
		r := summarize(name, *target, lat, el, before, after)
		if *dbpid != 0 {
			r.DBCPUms = float64(treeDelta(dbBefore, dbAfter)) / 1e6 / float64(len(lat))
		}
		r.Errors, r.Resumed = errs.Load(), resumed.Load()
		if v, ok := firstErr.Load().(string); ok {
			r.FirstErrors = v
		}
		return r
	}
	if !*resume {
		return json.NewEncoder(os.Stdout).Encode(measured("storm", *batch))
	}
	cold := measured("storm-new-sessions", *batch+"-first")
	firstErr = atomic.Value{}
	warm := measured("storm", *batch)
	return json.NewEncoder(os.Stdout).Encode(map[string]any{"result": warm, "cold": cold})
}

// stormCycle is agent a's (number i) cycle against target on a new
// connection. It says whether the TLS session was resumed.
func stormCycle(ctx context.Context, a agent, i int, target, batch string, key *ecdsa.PrivateKey, pool *x509.CertPool, o clientOpts) (bool, error) {
	c, err := openAgent(ctx, a, i, target, key, pool, o)
	if err != nil {
		return false, err
	}
	defer c.close()
	err = cycle(c, batch)
	return c.resumed(), err
}

func summarize(name, target string, lat []time.Duration, el time.Duration, before, after proc) result {
	slices.Sort(lat)
	q := func(p float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		return float64(lat[int(float64(len(lat)-1)*p)]) / 1e6
	}
	r := result{Name: name, Target: target, Agents: len(lat), Seconds: el.Seconds(), PerSecond: float64(len(lat)) / el.Seconds(),
		P50ms: q(0.5), P99ms: q(0.99), RSSMiB: float64(after.rss) / (1 << 20), PeakRSSMiB: float64(after.hwm) / (1 << 20)}
	if len(lat) > 0 {
		r.CPUms = float64(after.cpu-before.cpu) / 1e6 / float64(len(lat))
	}
	return r
}

// keepalive: conns agents on kept-open connections repeat 304 check-ins
// (If-None-Match with the ETag of their first answer) for d.
func keepalive(args []string) error {
	fs := flag.NewFlagSet("keepalive", flag.ExitOnError)
	data := fs.String("data", "", "server data directory (fleet setup ran)")
	url := fs.String("url", "", "server base URL")
	target := fs.String("target", "bulwark", "label of the target")
	conns := fs.Int("conns", 64, "open connections (one agent each)")
	dur := fs.Duration("d", 10*time.Second, "duration")
	pids := fs.String("pid", "", "server process ids to measure")
	h2 := fs.Bool("h2", false, "HTTP/2")
	idle := fs.Int("idle", 0, "also hold this many idle open agent connections (memory per connection)")
	fs.Parse(args)
	key, agents, err := loadFleet(*data)
	if err != nil {
		return err
	}
	pool, err := caPool(*data)
	if err != nil {
		return err
	}
	if *conns+*idle > len(agents) {
		return fmt.Errorf("%d connections need %d agents; setup made %d", *conns+*idle, *conns+*idle, len(agents))
	}
	ctx := context.Background()
	open := func(i int) (agentClient, error) {
		return openAgent(ctx, agents[i], i, *url, key, pool, clientOpts{h2: *h2})
	}
	// Idle connections first: memory per open connection.
	base := readProc(parsePIDs(*pids))
	var idleConns []agentClient
	for i := range *idle {
		c, err := open(*conns + i)
		if err == nil {
			idleConns = append(idleConns, c)
			_, _, err = checkin(c, "")
		}
		if err != nil {
			return fmt.Errorf("idle connection %d: %w", i, err)
		}
	}
	held := readProc(parsePIDs(*pids))
	var ops, errs atomic.Int64
	lat := make([][]time.Duration, *conns)
	var wg sync.WaitGroup
	var ready sync.WaitGroup
	startGate := make(chan struct{})
	for c := range *conns {
		ready.Add(1)
		wg.Go(func() {
			conn, err := open(c)
			var etag string
			if err == nil {
				defer conn.close()
				etag, _, err = checkin(conn, "")
			}
			ready.Done()
			if err != nil {
				errs.Add(1)
				return
			}
			<-startGate
			end := time.Now().Add(*dur)
			for time.Now().Before(end) {
				t := time.Now()
				_, code, err := checkin(conn, etag)
				if err != nil || code != http.StatusNotModified {
					errs.Add(1)
					continue
				}
				lat[c] = append(lat[c], time.Since(t))
				ops.Add(1)
			}
		})
	}
	ready.Wait()
	before := readProc(parsePIDs(*pids))
	start := time.Now()
	close(startGate)
	wg.Wait()
	el := time.Since(start)
	after := readProc(parsePIDs(*pids))
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	r := summarize("keepalive-304", *target, all, el, before, after)
	r.Agents = *conns
	r.Errors = errs.Load()
	out := map[string]any{"result": r}
	if *idle > 0 {
		out["idle_conns"] = *idle
		out["rss_per_idle_conn_kib"] = float64(held.rss-base.rss) / float64(*idle) / 1024
	}
	for _, c := range idleConns {
		c.close()
	}
	return json.NewEncoder(os.Stdout).Encode(out)
}

// history measures the SQLite database of n agents that each reported
// daily for days days, five states each, before and after pruning with the
// default retention.
func history(args []string) error {
	fs := flag.NewFlagSet("history", flag.ExitOnError)
	dir := fs.String("dir", "", "empty directory for the database")
	n := fs.Int("n", 100000, "agents")
	days := fs.Int("days", 60, "days of daily reports")
	fs.Parse(args)
	ctx := context.Background()
	path := filepath.Join(*dir, "bulwark.db")
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		return err
	}
	defer st.Close()
	now := time.Now()
	size := func() float64 {
		var total int64
		for _, suf := range []string{"", "-wal"} {
			if fi, err := os.Stat(path + suf); err == nil {
				total += fi.Size()
			}
		}
		return float64(total) / (1 << 20)
	}
	ins := func(q string, rows func(exec func(args ...any) error) error) error {
		tx, err := st.SQL().BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		stmt, err := tx.PrepareContext(ctx, q)
		if err != nil {
			return err
		}
		if err := rows(func(args ...any) error { _, err := stmt.ExecContext(ctx, args...); return err }); err != nil {
			return err
		}
		return tx.Commit()
	}
	err = ins(`INSERT INTO agents (id, machine_id, hostname, os, arch, grp, cert_serial, status, enrolled_at, last_seen)
		VALUES ($1,$2,$3,'debian 12','amd64','default',$4,'active',$5,$5)`, func(exec func(...any) error) error {
		for i := range *n {
			if err := exec(fmt.Sprintf("agt-%026x", i), fmt.Sprintf("%032x", i+1), "host-"+strconv.Itoa(i), fmt.Sprintf("%032x", i), now.UnixMilli()); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	err = ins(`INSERT INTO agent_states (agent_id, vendor, update_id, state, detail, updated_at) VALUES ($1,'example',$2,'installed','',$3)`,
		func(exec func(...any) error) error {
			for i := range *n {
				for u := 1; u <= 5; u++ {
					if err := exec(fmt.Sprintf("agt-%026x", i), fmt.Sprintf("BW-2026-%04d", u), now.UnixMilli()); err != nil {
						return err
					}
				}
			}
			return nil
		})
	if err != nil {
		return err
	}
	base := size()
	for d := *days; d >= 1; d-- {
		err = ins(`INSERT INTO reports (agent_id, batch_id, received_at) VALUES ($1,$2,$3)`, func(exec func(...any) error) error {
			at := now.Add(-time.Duration(d) * 24 * time.Hour).UnixMilli()
			for i := range *n {
				if err := exec(fmt.Sprintf("agt-%026x", i), fmt.Sprintf("%08x-%04x-%04x-%04x-%012x", d, i>>16, i&0xffff, d, i), at); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	full := size()
	t := time.Now()
	pruned, err := st.Prune(ctx, store.DefaultRetention, now)
	if err != nil {
		return err
	}
	took := time.Since(t)
	if _, err := st.SQL().ExecContext(ctx, `VACUUM`); err != nil {
		return err
	}
	fmt.Printf("history: %d agents with 5 states each: %.1f MiB; with %d days of daily report batch ids: %.1f MiB; pruned %d batch ids (default retention, %s) in %.1f s; after VACUUM: %.1f MiB\n",
		*n, base, *days, full, pruned["reports"], store.DefaultRetention.Reports, took.Seconds(), size())
	return nil
}
