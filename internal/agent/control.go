package agent

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultSocket is where the agent listens for local control.
const DefaultSocket = "/run/bulwark/agent.sock"

// ControlGroup is the group whose members may use the control socket
// besides root.
const ControlGroup = "bulwark"

// Status is what `bulwark agent status` shows.
type Status struct {
	AgentID       string        `json:"agent_id,omitempty"`
	Group         string        `json:"group,omitempty"`
	Server        string        `json:"server,omitempty"`
	Mode          Mode          `json:"mode"`
	LastCheckIn   time.Time     `json:"last_check_in,omitzero"`
	LastCheckInOK time.Time     `json:"last_check_in_ok,omitzero"` // the last one that succeeded
	LastError     string        `json:"last_error,omitempty"`
	NextCheckIn   time.Time     `json:"next_check_in,omitzero"`
	PendingReboot bool          `json:"pending_reboot"`
	States        map[State]int `json:"states"`
	Busy          string        `json:"busy,omitempty"` // what a running cycle is doing
	// CertNotAfter is when the client certificate expires; CertRenewal
	// when the agent renews it (two thirds of its lifetime).
	CertNotAfter time.Time `json:"cert_not_after,omitzero"`
	CertRenewal  time.Time `json:"cert_renewal,omitzero"`
	// Settings are the policy settings in effect, each with where it
	// comes from (the group policy, agent.yaml or the default).
	Settings []Setting `json:"settings,omitempty"`
}

// Progress is one line of an install's progress stream.
type Progress struct {
	Update string `json:"update,omitempty"`
	Phase  string `json:"phase"` // download, install, done, error
	Done   int64  `json:"done,omitempty"`
	Total  int64  `json:"total,omitempty"`
	Msg    string `json:"msg,omitempty"`
}

// Controller is what the control socket drives: the running daemon.
type Controller interface {
	Status() Status
	Updates() []UpdateRecord
	// InstallNow runs a foreground cycle that installs the given keys
	// (vendor/id or id), or every approved update when all is set.
	InstallNow(ctx context.Context, keys []string, all bool, progress func(Progress)) (*CycleResult, error)
}

// ServeControl serves the control API on a Unix socket at path until ctx
// ends. The socket is 0660, group ControlGroup when that group exists, and
// every connection's peer is checked with SO_PEERCRED: root, the agent's
// own user, or a member of ControlGroup.
func ServeControl(ctx context.Context, path string, c Controller) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("control socket: %w", err)
	}
	// The socket is made under a temporary name, given its mode and group,
	// and only then renamed into place, so it never exists with looser
	// permissions.
	tmp := path + ".new"
	os.Remove(tmp)
	l, err := net.Listen("unix", tmp)
	if err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	gid := -1
	if g, err := user.LookupGroup(ControlGroup); err == nil {
		gid, _ = strconv.Atoi(g.Gid)
		os.Chown(tmp, -1, gid)
	}
	if err := os.Chmod(tmp, 0o660); err != nil {
		l.Close()
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		l.Close()
		return fmt.Errorf("control socket: %w", err)
	}
	defer os.Remove(path)
	srv := &http.Server{
		Handler:           controlHandler(c),
		ReadHeaderTimeout: 10 * time.Second,
		ConnContext: func(ctx context.Context, conn net.Conn) context.Context {
			return context.WithValue(ctx, peerKey{}, conn)
		},
	}
	srv.Handler = peerCheck(gid, srv.Handler)
	go func() {
		<-ctx.Done()
		srv.Shutdown(context.WithoutCancel(ctx))
	}()
	err = srv.Serve(l)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

type peerKey struct{}

// peerCheck refuses connections from users who are not root, the agent's
// own user, or in the control group.
func peerCheck(gid int, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _ := r.Context().Value(peerKey{}).(*net.UnixConn)
		if conn == nil || !allowedPeer(conn, gid) {
			http.Error(w, "permission denied: the agent's control socket is for root and members of group "+ControlGroup, http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func allowedPeer(conn *net.UnixConn, gid int) bool {
	raw, err := conn.SyscallConn()
	if err != nil {
		return false
	}
	var cred *unix.Ucred
	raw.Control(func(fd uintptr) { cred, err = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED) })
	if err != nil || cred == nil {
		return false
	}
	if cred.Uid == 0 || int(cred.Uid) == os.Getuid() {
		return true
	}
	if gid < 0 {
		return false
	}
	if int(cred.Gid) == gid {
		return true
	}
	// Supplementary groups of the peer process.
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", cred.Pid))
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "Groups:"); ok {
			for _, g := range strings.Fields(rest) {
				if g == strconv.Itoa(gid) {
					return true
				}
			}
		}
	}
	return false
}

func controlHandler(c Controller) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, c.Status()) })
	mux.HandleFunc("GET /v1/updates", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, c.Updates()) })
	mux.HandleFunc("POST /v1/install", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Updates []string `json:"updates"`
			All     bool     `json:"all"`
		}
		dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			http.Error(w, "bad request: "+err.Error(), http.StatusBadRequest)
			return
		}
		if len(req.Updates) == 0 && !req.All {
			http.Error(w, "name updates to install, or ask for all", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/x-ndjson")
		enc := json.NewEncoder(w)
		fl, _ := w.(http.Flusher)
		send := func(p Progress) {
			enc.Encode(p)
			if fl != nil {
				fl.Flush()
			}
		}
		res, err := c.InstallNow(r.Context(), req.Updates, req.All, send)
		if err != nil {
			send(Progress{Phase: "error", Msg: err.Error()})
			return
		}
		b, _ := json.Marshal(res)
		send(Progress{Phase: "done", Msg: string(b)})
	})
	return mux
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// ControlClient talks to a running agent over its control socket.
type ControlClient struct {
	hc *http.Client
}

// NewControlClient connects to the socket at path (DefaultSocket if empty).
func NewControlClient(path string) *ControlClient {
	if path == "" {
		path = DefaultSocket
	}
	return &ControlClient{hc: &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			c, err := d.DialContext(ctx, "unix", path)
			if err != nil {
				return nil, fmt.Errorf("%w (is `bulwark agent run` running, and are you root or in group %s?)", err, ControlGroup)
			}
			return c, nil
		},
	}}}
}

func (c *ControlClient) get(ctx context.Context, p string, v any) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://agent"+p, nil)
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("agent: %s", strings.TrimSpace(string(b)))
	}
	return json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(v)
}

// Status asks the agent for its status.
func (c *ControlClient) Status(ctx context.Context) (Status, error) {
	var s Status
	return s, c.get(ctx, "/v1/status", &s)
}

// Updates asks the agent what it knows about every update.
func (c *ControlClient) Updates(ctx context.Context) ([]UpdateRecord, error) {
	var u []UpdateRecord
	return u, c.get(ctx, "/v1/updates", &u)
}

// Install asks the agent to install now, calling progress for every line of
// its progress stream, and returns the cycle's result.
func (c *ControlClient) Install(ctx context.Context, keys []string, all bool, progress func(Progress)) (*CycleResult, error) {
	body, _ := json.Marshal(map[string]any{"updates": keys, "all": all})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://agent/v1/install", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("agent: %s", strings.TrimSpace(string(b)))
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		var p Progress
		if err := json.Unmarshal(sc.Bytes(), &p); err != nil {
			return nil, fmt.Errorf("agent sent a bad progress line: %w", err)
		}
		switch p.Phase {
		case "error":
			return nil, errors.New(p.Msg)
		case "done":
			var res CycleResult
			if err := json.Unmarshal([]byte(p.Msg), &res); err != nil {
				return nil, err
			}
			return &res, nil
		}
		if progress != nil {
			progress(p)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return nil, errors.New("agent closed the connection before the install finished")
}
