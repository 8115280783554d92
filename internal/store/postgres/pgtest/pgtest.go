// Package pgtest starts a real, private PostgreSQL for tests and benchmarks:
// initdb and pg_ctl from Debian's postgresql package (scripts/setup.d/
// postgres.sh installs it) in a fresh temporary directory, run as an
// unprivileged user (nobody when the caller is root: PostgreSQL refuses to
// run as root), listening only on a Unix socket inside that directory
// (mode 0700), so nothing else on the machine can reach it and no system
// service is involved.
//
// When PostgreSQL is not installed, Start fails the test under CI (CI set)
// and skips it elsewhere with the command that installs it.
//
// It must not be imported outside tests and benchmarks.
package pgtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// Server is one running PostgreSQL.
type Server struct {
	Dir  string // temporary directory: data/, the socket, log
	bin  string
	uid  int // -1: run as the caller
	gid  int
	User string // database superuser
}

// Options change how the server runs.
type Options struct {
	// Durable keeps fsync and synchronous commit on (benchmarks); tests turn
	// them off for speed.
	Durable bool
	// Settings are extra postgres -c name=value settings.
	Settings map[string]string
}

// BinDir finds the newest installed PostgreSQL's bin directory.
func BinDir() (string, error) {
	if d := os.Getenv("BULWARK_PG_BIN"); d != "" {
		return d, nil
	}
	ms, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	sort.Slice(ms, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(ms[i]))))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(ms[j]))))
		return vi < vj
	})
	if len(ms) == 0 {
		if p, err := exec.LookPath("initdb"); err == nil {
			return filepath.Dir(p), nil
		}
		return "", fmt.Errorf("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): run scripts/test once, or apt-get install postgresql")
	}
	return filepath.Dir(ms[len(ms)-1]), nil
}

// Start starts a PostgreSQL for the test and stops it (removing its
// directory) when the test ends.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	bin, err := BinDir()
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI: %v", err)
		}
		t.Skipf("%v", err)
	}
	s, err := StartServer(bin, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("stop PostgreSQL: %v", err)
		}
	})
	return s
}

// StartServer starts a PostgreSQL from bin; the caller stops it.
func StartServer(bin string, opts Options) (*Server, error) {
	dir, err := os.MkdirTemp("", "bulwark-pg-")
	if err != nil {
		return nil, err
	}
	s := &Server{Dir: dir, bin: bin, uid: -1, gid: -1, User: "bulwark"}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("nobody")
		if err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("PostgreSQL cannot run as root and there is no user nobody: %w", err)
		}
		s.uid, _ = strconv.Atoi(u.Uid)
		s.gid, _ = strconv.Atoi(u.Gid)
		if err := os.Chown(dir, s.uid, s.gid); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	fail := func(err error) (*Server, error) {
		log, _ := os.ReadFile(filepath.Join(dir, "log"))
		s.Stop()
		return nil, fmt.Errorf("%w\n%s", err, log)
	}
	if out, err := s.run("initdb", "-D", s.data(), "-U", s.User, "--auth=trust", "--no-instructions",
		"--encoding=UTF8", "--locale=C", "--no-sync"); err != nil {
		return fail(fmt.Errorf("initdb: %v: %s", err, out))
	}
	set := map[string]string{
		"listen_addresses":        "''",
		"unix_socket_directories": "'" + dir + "'",
		"unix_socket_permissions": "0700",
		"max_connections":         "200",
		"shared_buffers":          "128MB",
	}
	if !opts.Durable {
		set["fsync"], set["synchronous_commit"], set["full_page_writes"] = "off", "off", "off"
	}
	for k, v := range opts.Settings {
		set[k] = v
	}
	var o []string
	for k, v := range set {
		o = append(o, "-c "+k+"="+v)
	}
	sort.Strings(o)
	if out, err := s.run("pg_ctl", "-D", s.data(), "-l", filepath.Join(dir, "log"), "-w", "-t", "60",
		"-o", strings.Join(o, " "), "start"); err != nil {
		return fail(fmt.Errorf("pg_ctl start: %v: %s", err, out))
	}
	return s, nil
}

func (s *Server) data() string { return filepath.Join(s.Dir, "data") }

func (s *Server) run(name string, args ...string) ([]byte, error) {
	cmd := exec.Command(filepath.Join(s.bin, name), args...)
	cmd.Dir = s.Dir
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LC_ALL=C"}
	if s.uid >= 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(s.uid), Gid: uint32(s.gid)}}
	}
	return cmd.CombinedOutput()
}

// Stop stops the server fast and removes its directory.
func (s *Server) Stop() error {
	var err error
	if _, e := os.Stat(filepath.Join(s.data(), "postmaster.pid")); e == nil {
		if out, e := s.run("pg_ctl", "-D", s.data(), "-m", "fast", "-w", "stop"); e != nil {
			err = fmt.Errorf("pg_ctl stop: %v: %s", e, out)
		}
	}
	if e := os.RemoveAll(s.Dir); e != nil && err == nil {
		err = e
	}
	return err
}

// URL is the connection URL of database name (over the Unix socket).
func (s *Server) URL(name string) string {
	q := url.Values{"host": {s.Dir}}
	return (&url.URL{Scheme: "postgres", User: url.User(s.User), Path: "/" + name, RawQuery: q.Encode()}).String()
}

// NewDatabase creates an empty database with a random name and returns its
// URL.
func (s *Server) NewDatabase(t testing.TB) string {
	t.Helper()
	u, err := s.CreateDatabase()
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// CreateDatabase creates an empty database with a random name and returns
// its URL.
func (s *Server) CreateDatabase() (string, error) {
	b := make([]byte, 6)
	rand.Read(b)
	name := "t_" + hex.EncodeToString(b)
	cfg, err := pgx.ParseConfig(s.URL("postgres"))
	if err != nil {
		return "", err
	}
	db := stdlib.OpenDB(*cfg)
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+name+" TEMPLATE template0"); err != nil {
		return "", fmt.Errorf("create database: %w", err)
	}
	return s.URL(name), nil
}

// SQL opens database/sql on url (for tests that look inside).
func SQL(t testing.TB, url string) *sql.DB {
	t.Helper()
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	db := stdlib.OpenDB(*cfg)
	t.Cleanup(func() { db.Close() })
	return db
}
