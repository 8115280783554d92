//go:build !agentonly

package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/bulwarkhq/bulwark/internal/capread"
	"github.com/bulwarkhq/bulwark/internal/config"
	"github.com/bulwarkhq/bulwark/internal/pki"
	"github.com/bulwarkhq/bulwark/internal/progress"
	"github.com/bulwarkhq/bulwark/internal/server"
	"github.com/bulwarkhq/bulwark/internal/store"
	"github.com/bulwarkhq/bulwark/internal/termtext"
)

// adminOptions say how `bulwark admin` reaches the server.
type adminOptions struct {
	tokenFile, dataDir, config string
	wait                       time.Duration
	out                        *outputFormat
	flags                      *pflag.FlagSet // the admin command's flags (adminSettings among them); nil for none
}

// adminConn is the connection adminSettings layer into.
type adminConn struct {
	Server        string `yaml:"server"`
	Token         string `yaml:"token"`
	CAFingerprint string `yaml:"ca_fingerprint"`
}

// adminSettings are the connection settings of `bulwark admin`, each
// once: key in the config file, flag, variable, help.
var adminSettings = config.Table{
	{Key: "server", Flag: "server", Env: "BULWARK_SERVER", Help: "server URL, https://host:port"},
	{Key: "token", Flag: "token", Env: "BULWARK_TOKEN", Secret: nonEmpty, Help: "API token (bwa_…); visible to other users in ps: prefer --token-file"},
	{Key: "ca_fingerprint", Flag: "ca-fingerprint", Env: "BULWARK_CA_FINGERPRINT", Help: "the server's site CA fingerprint, sha256:<64 hex>"},
}

func newAdminCmd() *cobra.Command {
	o := &adminOptions{out: newOutputFormat()}
	cmd := &cobra.Command{
		Use:   "admin",
		Short: "Administer an update server: groups, approvals, computers, tokens, sync",
		Long: `Administer an update server through its API (/api/v1) over HTTPS, trusting
only the server's site CA, pinned by fingerprint.

Connection settings, lowest first: the YAML file given with --config (or
$XDG_CONFIG_HOME/bulwark/admin.yaml when present; with a token it must be mode
0600) and then the *.yaml files of its drop-in directory (FILE.d) in lexical
order, the variables (an empty one counts as unset), then flags:
` + adminSettings.Describe() + `
Give the token with
--token-file FILE (mode 0600, refused when others can read it) or
--token-file - (stdin); --token works but shows the token to every user of the
machine in ps. On the server's own machine, --data-dir DIR finds the server's
URL and CA in its data directory.`,
		Example: `  bulwark admin --server https://hq:8443 --ca-fingerprint sha256:… --token-file admin.token groups list
  pass show bulwark/admin | bulwark admin --server https://hq:8443 --ca-fingerprint sha256:… --token-file - status
  bulwark admin --data-dir ./bulwark-data --token-file admin.token groups create web
  bulwark admin approve web example/BW-2026-0042 --deadline-in 3d --rollout 25
  bulwark admin tokens create --kind enroll --group web --max-uses 50 --expires-in 168h`,
	}
	pf := cmd.PersistentFlags()
	adminSettings.Register(pf)
	o.flags = pf
	pf.StringVar(&o.tokenFile, "token-file", "", "read the API token from this file (mode 0600), or from stdin with -")
	pf.StringVar(&o.dataDir, "data-dir", "", "a local server's data directory: its URL and CA are read from it")
	pf.StringVar(&o.config, "config", "", "YAML file with server, token and ca_fingerprint (its drop-ins FILE.d/*.yaml after it)")
	pf.DurationVar(&o.wait, "wait", 0, "keep trying this long while the server is not up yet")
	pf.VarP(o.out, "output", "o", outputUsage(o.out.allowed))
	cmd.AddCommand(
		adminStatusCmd(o), adminGroupsCmd(o), adminApprovalsCmd(o), adminApproveCmd(o, "approve", "install"),
		adminApproveCmd(o, "decline", "decline"), adminUpdatesCmd(o), adminComputersCmd(o), adminTokensCmd(o), adminSyncCmd(o),
		adminUsersCmd(o), adminAuditCmd(o), adminVendorsCmd(o), adminRulesCmd(o), adminRolloutsCmd(o), adminLockdownCmd(o), adminConfigCmd(o),
	)
	return cmd
}

// apiClient calls the admin API.
type apiClient struct {
	base  string
	token string
	hc    *http.Client
	wait  time.Duration
}

func (o *adminOptions) client(stdin io.Reader, stderr io.Writer) (*apiClient, error) {
	s, err := o.settings()
	if err != nil {
		return nil, err
	}
	var conn adminConn
	if err := s.Unmarshal(&conn); err != nil {
		return nil, fmt.Errorf("admin config: %w", err)
	}
	srv, token, pin := conn.Server, conn.Token, conn.CAFingerprint
	deadline := time.Now().Add(o.wait)
	if s.From("token") == "--token" {
		tokenOnCommandLine(stderr, "token", "token-file", "BULWARK_TOKEN")
	}
	if o.tokenFile != "" {
		if o.tokenFile != "-" {
			// A server started at the same time writes the file.
			if _, err := readWaiting(o.tokenFile, maxTokenFile, deadline); err != nil {
				return nil, fmt.Errorf("--token-file: %w", err)
			}
		}
		t, err := readTokenFile("token-file", o.tokenFile, stdin)
		if err != nil {
			return nil, err
		}
		token = t
	}
	if o.dataDir != "" {
		if pin == "" {
			b, err := readWaiting(filepath.Join(o.dataDir, "tls", "ca.crt"), 64<<10, deadline)
			if err != nil {
				return nil, fmt.Errorf("data dir: %w", err)
			}
			blk, _ := pem.Decode(b)
			if blk == nil {
				return nil, fmt.Errorf("data dir: %s/tls/ca.crt is not a PEM certificate", o.dataDir)
			}
			cert, err := x509.ParseCertificate(blk.Bytes)
			if err != nil {
				return nil, fmt.Errorf("data dir: %w", err)
			}
			pin = pki.Fingerprint(cert)
		}
		if srv == "" {
			b, err := readWaiting(filepath.Join(o.dataDir, server.LocalURLFile), 4<<10, deadline)
			if err != nil {
				return nil, fmt.Errorf("no running server found in %s: %w", o.dataDir, err)
			}
			srv = strings.TrimSpace(string(b))
		}
	}
	if srv == "" {
		return nil, errors.New("no server: give --server https://host:port (or --data-dir on the server's machine)")
	}
	u, err := url.Parse(srv)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("server %q: use https://host:port", srv)
	}
	if pin == "" {
		return nil, errors.New("no CA fingerprint: give --ca-fingerprint sha256:… as the server printed it (or --data-dir)")
	}
	if token == "" {
		return nil, errors.New("no API token: give --token-file FILE (or - for stdin), BULWARK_TOKEN or a config file (mode 0600)")
	}
	tc, err := pki.PinnedClientConfig(pin)
	if err != nil {
		return nil, err
	}
	return &apiClient{base: strings.TrimRight(srv, "/"), token: token, wait: o.wait,
		hc: &http.Client{Transport: &http.Transport{TLSClientConfig: tc}, Timeout: 5 * time.Minute}}, nil
}

// settings layers adminSettings: the config file (--config, else
// $XDG_CONFIG_HOME/bulwark/admin.yaml when present) and its drop-ins, the
// variables, the flags.
func (o *adminOptions) settings() (*config.Settings, error) {
	path := o.config
	if path == "" {
		if dir, err := os.UserConfigDir(); err == nil {
			path = filepath.Join(dir, "bulwark", "admin.yaml")
		}
	}
	var src config.Sources
	if path != "" {
		files, err := config.Files(path, o.config != "")
		if err != nil {
			return nil, err
		}
		src.Files = files
	}
	src.Environ, src.Flags = os.Environ, o.flags
	s, err := adminSettings.Load(src)
	if err != nil {
		return nil, fmt.Errorf("admin %w", err)
	}
	return s, nil
}

func adminConfigCmd(o *adminOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "config",
		Short: "Show the connection settings in effect and where each comes from",
		Long: `Layer the connection settings (server, token, ca_fingerprint) as every admin
command does: the config file and its drop-ins, BULWARK_SERVER, BULWARK_TOKEN,
BULWARK_CA_FINGERPRINT, then flags; show each value and where it comes from.
The token shows as (secret). --token-file and --data-dir, read when a command
connects, are not shown. The server is not contacted.`,
		Example: `  bulwark admin config
  BULWARK_SERVER=https://hq:8443 bulwark admin --config ./admin.yaml config -o yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := o.settings()
			if err != nil {
				return err
			}
			return printSettings(cmd.OutOrStdout(), o.out, s.Values(adminSettings))
		},
	}
}

// readWaiting reads a file that a starting server is about to write,
// trying until deadline (--wait).
func readWaiting(p string, max int64, deadline time.Time) ([]byte, error) {
	for {
		b, err := capread.File(p, max)
		if err == nil || !errors.Is(err, os.ErrNotExist) || time.Now().After(deadline) {
			return b, err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// apiError is the server's refusal.
type apiError struct {
	Status int
	Msg    string
}

func (e *apiError) Error() string { return fmt.Sprintf("server: %s (HTTP %d)", e.Msg, e.Status) }

// do calls the API; out, when not nil, receives the JSON answer.
func (c *apiClient) do(ctx context.Context, method, path string, body, out any) error {
	var payload []byte
	if body != nil {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return err
		}
	}
	deadline := time.Now().Add(c.wait)
	for {
		req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(payload))
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+c.token)
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := c.hc.Do(req)
		if err != nil {
			if time.Now().Before(deadline) && ctx.Err() == nil {
				time.Sleep(200 * time.Millisecond)
				continue
			}
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
		if err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
		if resp.StatusCode >= 300 {
			var e struct{ Error string }
			if json.Unmarshal(b, &e) != nil || e.Error == "" {
				e.Error = strings.TrimSpace(string(b))
			}
			return &apiError{Status: resp.StatusCode, Msg: e.Error}
		}
		if out != nil && len(b) > 0 {
			if raw, ok := out.(*json.RawMessage); ok {
				*raw = b
				return nil
			}
			return json.Unmarshal(b, out)
		}
		return nil
	}
}

// call runs one API call and prints the answer: the server's JSON with -o
// json or yaml, or through text.
func (o *adminOptions) call(cmd *cobra.Command, method, path string, body any, text func(w io.Writer, raw []byte) error) error {
	c, err := o.client(cmd.InOrStdin(), cmd.ErrOrStderr())
	if err != nil {
		return err
	}
	var raw json.RawMessage
	if err := c.do(cmd.Context(), method, path, body, &raw); err != nil {
		return err
	}
	if method == "GET" && !strings.Contains(path, "limit=") {
		if raw, err = c.rest(cmd.Context(), path, raw); err != nil {
			return err
		}
	}
	w := cmd.OutOrStdout()
	if o.out.Data() {
		if len(raw) == 0 {
			raw = json.RawMessage(`{}`)
		}
		if err := o.out.printRaw(w, raw); err != nil {
			return fmt.Errorf("the server's answer to %s %s: %w", method, path, err)
		}
		return nil
	}
	// Every text output escapes what could drive the terminal (F9).
	return text(termtext.NewWriter(w), raw)
}

// deleteByID is the command `VERB ID` that sends DELETE base+ID and, done,
// says done+ID+".".
func (o *adminOptions) deleteByID(verb, short, example, base, done string) *cobra.Command {
	return &cobra.Command{
		Use: verb + " ID", Short: short, Args: cobra.ExactArgs(1),
		Example: "  " + example,
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.call(cmd, "DELETE", base+url.PathEscape(args[0]), nil, say(done+args[0]+"."))
		},
	}
}

func say(msg string) func(io.Writer, []byte) error {
	return func(w io.Writer, _ []byte) error {
		_, err := fmt.Fprintln(w, msg)
		return err
	}
}

// listTable is the printer of a list answer ({"KEY": [...], ...}): one row
// per element of KEY's array, made by row, under header. KEY matches as a
// struct field would (exactly, else ignoring case).
func listTable[E any](key, header string, row func(E) []string) func(io.Writer, []byte) error {
	return func(w io.Writer, raw []byte) error {
		var r map[string]json.RawMessage
		if err := json.Unmarshal(raw, &r); err != nil {
			return err
		}
		list, ok := r[key]
		for k, v := range r {
			if !ok && strings.EqualFold(k, key) {
				list, ok = v, true
			}
		}
		var items []E
		if ok {
			if err := json.Unmarshal(list, &items); err != nil {
				return err
			}
		}
		var rows [][]string
		for _, e := range items {
			rows = append(rows, row(e))
		}
		return table(w, header, rows)
	}
}

func table(w io.Writer, header string, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	for _, r := range rows {
		cells := make([]string, len(r))
		for i, c := range r {
			cells[i] = termtext.Escape(c) // a tab or newline in a cell would fake columns or rows
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	return tw.Flush()
}

func fmtTime(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04")
}

func adminStatusCmd(o *adminOptions) *cobra.Command {
	return &cobra.Command{
		Use: "status",
		Example: `  bulwark admin status
  bulwark admin --data-dir /var/lib/bulwark-server --token-file admin.token status -o yaml`,
		Short: "Show the server's version, repositories, last syncs and computers",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.call(cmd, "GET", "/api/v1/status", nil, func(w io.Writer, raw []byte) error {
				var st server.Status
				if err := json.Unmarshal(raw, &st); err != nil {
					return err
				}
				fmt.Fprintf(w, "server %s at %s\nsite CA %s\nsite root %s\n", st.Version, st.URL, st.CA, st.Site.RootFingerprint)
				for _, r := range st.Repositories {
					fmt.Fprintf(w, "vendor %s (%s): root %s, timestamp v%d%s\n", r.Name, r.Kind, orPending(r.RootFingerprint), r.TimestampVersion, trustNote(r.SiteTrust))
				}
				for _, s := range st.LastSyncs {
					fmt.Fprintf(w, "last sync of %s: %s at %s %s\n", s.Vendor, s.Status, fmtTime(&s.StartedAt), termtext.Escape(s.Error))
				}
				for k, n := range st.Computers {
					fmt.Fprintf(w, "computers %s: %d\n", k, n)
				}
				return nil
			})
		},
	}
}

func adminGroupsCmd(o *adminOptions) *cobra.Command {
	cmd := &cobra.Command{Use: "groups", Short: "Computer groups: list, create, delete, move computers, central policy"}
	var moveTo string
	del := &cobra.Command{
		Use: "delete GROUP", Short: "Delete a group; its computers move to --move-to", Args: cobra.ExactArgs(1),
		Example: `  bulwark admin groups delete staging --move-to default`,
		RunE: func(cmd *cobra.Command, args []string) error {
			p := "/api/v1/groups/" + url.PathEscape(args[0])
			if moveTo != "" {
				p += "?move_to=" + url.QueryEscape(moveTo)
			}
			return o.call(cmd, "DELETE", p, nil, say("Deleted group "+args[0]+"."))
		},
	}
	del.Flags().StringVar(&moveTo, "move-to", "", "group that receives the computers (default: default)")
	cmd.AddCommand(
		&cobra.Command{
			Use: "list", Short: "List groups", Args: cobra.NoArgs,
			Example: `  bulwark admin groups list
  bulwark admin groups list -o json`,
			RunE: func(cmd *cobra.Command, args []string) error {
				return o.call(cmd, "GET", "/api/v1/groups", nil, listTable("groups", "GROUP\tCOMPUTERS\tCREATED", func(g store.Group) []string {
					return []string{g.Name, fmt.Sprint(g.Computers), fmtTime(&g.CreatedAt)}
				}))
			},
		},
		&cobra.Command{
			Use: "create GROUP", Short: "Create a group", Args: cobra.ExactArgs(1),
			Example: `  bulwark admin groups create web`,
			RunE: func(cmd *cobra.Command, args []string) error {
				return o.call(cmd, "POST", "/api/v1/groups", server.GroupRequest{Name: args[0]}, say("Created group "+args[0]+"."))
			},
		},
		del,
		adminGroupPolicyCmd(o),
		&cobra.Command{
			Use: "move GROUP COMPUTER-ID...", Short: "Move computers into a group", Args: cobra.MinimumNArgs(2),
			Example: `  bulwark admin groups move web agt-3f2k9x7q4m2p8r5t agt-9d4h2k7w1s6v3n8b`,
			RunE: func(cmd *cobra.Command, args []string) error {
				return o.call(cmd, "POST", "/api/v1/groups/"+url.PathEscape(args[0])+"/computers", server.MoveRequest{Computers: args[1:]},
					say(fmt.Sprintf("Moved %d computer(s) to %s.", len(args)-1, args[0])))
			},
		},
	)
	return cmd
}

func splitUpdate(s string) (string, string, error) {
	v, id, ok := strings.Cut(s, "/")
	if !ok || v == "" || id == "" {
		return "", "", fmt.Errorf("update %q: use VENDOR/ID, e.g. example/BW-2026-0042", s)
	}
	return v, id, nil
}

func approvalPath(group, upd string) (string, error) {
	v, id, err := splitUpdate(upd)
	if err != nil {
		return "", err
	}
	return "/api/v1/groups/" + url.PathEscape(group) + "/approvals/" + url.PathEscape(v) + "/" + url.PathEscape(id), nil
}

type approvalFlags struct {
	action     string
	deadline   string
	deadlineIn time.Duration
	rollout    int
}

func (af *approvalFlags) request() (*server.ApprovalRequest, error) {
	req := &server.ApprovalRequest{Action: af.action, Rollout: af.rollout}
	if af.action != "decline" && (af.rollout < 1 || af.rollout > 100) {
		return nil, fmt.Errorf("--rollout %d: use a percentage from 1 to 100", af.rollout)
	}
	if af.deadline != "" && af.deadlineIn != 0 {
		return nil, errors.New("give --deadline or --deadline-in, not both")
	}
	if af.deadline != "" {
		t, err := time.Parse(time.RFC3339, af.deadline)
		if err != nil {
			return nil, fmt.Errorf("--deadline %q: use RFC 3339, e.g. 2026-12-01T18:00:00Z", af.deadline)
		}
		req.Deadline = &t
	}
	if af.deadlineIn != 0 {
		t := time.Now().Add(af.deadlineIn).UTC().Truncate(time.Second)
		req.Deadline = &t
	}
	return req, nil
}

func (af *approvalFlags) register(cmd *cobra.Command, withAction bool) {
	f := cmd.Flags()
	if withAction {
		f.StringVar(&af.action, "action", "install", "install, uninstall or decline")
	}
	f.StringVar(&af.deadline, "deadline", "", "install by this time (RFC 3339); overrides every agent policy")
	f.DurationVar(&af.deadlineIn, "deadline-in", 0, "install within this long from now, e.g. 3d or 72h")
	f.IntVar(&af.rollout, "rollout", 100, "percentage of the group's computers, 1 to 100")
}

func (o *adminOptions) setApproval(cmd *cobra.Command, group, upd string, af *approvalFlags) error {
	p, err := approvalPath(group, upd)
	if err != nil {
		return err
	}
	req, err := af.request()
	if err != nil {
		return err
	}
	return o.call(cmd, "PUT", p, req, say(fmt.Sprintf("%s: %s %s (rollout %d%%); approvals/%s.json re-signed.", group, req.Action, upd, req.Rollout, group)))
}

func adminApprovalsCmd(o *adminOptions) *cobra.Command {
	cmd := &cobra.Command{Use: "approvals", Short: "A group's approvals: list, set, remove"}
	var af approvalFlags
	set := &cobra.Command{
		Use: "set GROUP VENDOR/ID", Short: "Approve (install or uninstall) or decline an update for a group", Args: cobra.ExactArgs(2),
		Example: `  bulwark admin approvals set web example/BW-2026-0042 --action uninstall
  bulwark admin approvals set web example/BW-2026-0042 --action install --deadline 2026-12-01T18:00:00Z`,
		RunE: func(cmd *cobra.Command, args []string) error { return o.setApproval(cmd, args[0], args[1], &af) },
	}
	af.register(set, true)
	cmd.AddCommand(
		&cobra.Command{
			Use: "list GROUP", Short: "List a group's approvals", Args: cobra.ExactArgs(1),
			Example: `  bulwark admin approvals list web
  bulwark admin approvals list web -o yaml`,
			RunE: func(cmd *cobra.Command, args []string) error {
				return o.call(cmd, "GET", "/api/v1/groups/"+url.PathEscape(args[0])+"/approvals", nil, listTable("approvals", "UPDATE\tACTION\tROLLOUT\tDEADLINE", func(a store.Approval) []string {
					return []string{a.Vendor + "/" + a.UpdateID, a.Action, fmt.Sprintf("%d%%", a.Rollout), fmtTime(a.Deadline)}
				}))
			},
		},
		set,
		&cobra.Command{
			Use: "remove GROUP VENDOR/ID", Short: "Remove an approval or decline", Args: cobra.ExactArgs(2),
			Example: `  bulwark admin approvals remove web example/BW-2026-0042`,
			RunE: func(cmd *cobra.Command, args []string) error {
				p, err := approvalPath(args[0], args[1])
				if err != nil {
					return err
				}
				return o.call(cmd, "DELETE", p, nil, say(fmt.Sprintf("%s: removed %s; approvals/%s.json re-signed.", args[0], args[1], args[0])))
			},
		},
	)
	return cmd
}

// adminApproveCmd is the short form: `approve GROUP VENDOR/ID` and
// `decline GROUP VENDOR/ID`.
func adminApproveCmd(o *adminOptions, use, action string) *cobra.Command {
	af := &approvalFlags{action: action}
	cmd := &cobra.Command{
		Use:   use + " GROUP VENDOR/ID",
		Short: map[string]string{"install": "Approve an update for install in a group", "decline": "Decline an update for a group"}[action],
		Example: map[string]string{
			"install": "  bulwark admin approve web example/BW-2026-0042\n  bulwark admin approve web example/BW-2026-0042 --deadline-in 3d --rollout 25",
			"decline": "  bulwark admin decline web example/BW-2026-0043",
		}[action],
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error { return o.setApproval(cmd, args[0], args[1], af) },
	}
	if action != "decline" {
		af.register(cmd, false)
	}
	return cmd
}

func adminUpdatesCmd(o *adminOptions) *cobra.Command {
	cmd := &cobra.Command{Use: "updates", Short: "Updates the server's repositories hold"}
	var vendor, product, class, sev, cve, neededMin string
	list := &cobra.Command{
		Use: "list", Short: "List updates with how many computers need them and are in each state", Args: cobra.NoArgs,
		Example: `  bulwark admin updates list --severity critical --needed-min 1
  bulwark admin updates list --cve CVE-2026-1234
  bulwark admin updates list --vendor example -o json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			q := url.Values{}
			for k, v := range map[string]string{"vendor": vendor, "product": product, "classification": class, "severity": sev, "cve": cve, "needed_min": neededMin} {
				if v != "" {
					q.Set(k, v)
				}
			}
			return o.call(cmd, "GET", "/api/v1/updates?"+q.Encode(), nil, listTable("updates", "UPDATE\tSEVERITY\tCLASSIFICATION\tPRODUCT\tRELEASED\tNEEDED BY\tCVES\tSTATES\tTITLE", func(u server.UpdateView) []string {
				var st []string
				for k, n := range u.States {
					st = append(st, fmt.Sprintf("%s=%d", k, n))
				}
				sort.Strings(st)
				return []string{u.Vendor + "/" + u.ID, u.Severity, u.Classification, u.Product, u.Released, fmt.Sprint(u.NeededBy), strings.Join(u.CVEs, ","), strings.Join(st, " "), u.Title}
			}))
		},
	}
	f := list.Flags()
	f.StringVar(&vendor, "vendor", "", "only this vendor repository")
	f.StringVar(&product, "product", "", "only this product")
	f.StringVar(&class, "classification", "", "only this classification")
	f.StringVar(&sev, "severity", "", "only this severity")
	f.StringVar(&cve, "cve", "", "only updates that fix this CVE, e.g. CVE-2026-1234")
	f.StringVar(&neededMin, "needed-min", "", "only updates at least this many computers need (needed, downloaded or failed)")
	cmd.AddCommand(list)
	return cmd
}

func adminComputersCmd(o *adminOptions) *cobra.Command {
	cmd := &cobra.Command{Use: "computers", Short: "Enrolled computers: list, show, remove, revoke"}
	var group, missing string
	list := &cobra.Command{
		Use: "list", Short: "List computers (every page) with the updates they miss", Args: cobra.NoArgs,
		Example: `  bulwark admin computers list --missing critical
  bulwark admin computers list --group web -o yaml`,
		RunE: func(cmd *cobra.Command, args []string) error {
			q := url.Values{}
			if group != "" {
				q.Set("group", group)
			}
			if missing != "" {
				q.Set("missing", missing)
			}
			cs, err := o.allComputers(cmd, q)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if o.out.Data() {
				return o.out.print(w, map[string]any{"computers": cs})
			}
			var rows [][]string
			for _, c := range cs {
				rows = append(rows, []string{c.ID, c.Hostname, c.Group, c.Status, c.OS, fmtTime(&c.LastSeen), certExpiry(c.CertNotAfter),
					fmt.Sprintf("%d/%d/%d", c.MissingCritical, c.MissingImportant, c.MissingOther), fmt.Sprint(c.Failed), c.Flag})
			}
			return table(termtext.NewWriter(w), "ID\tHOSTNAME\tGROUP\tSTATUS\tOS\tLAST SEEN\tCERT EXPIRES\tMISSING C/I/O\tFAILED\tFLAG", rows)
		},
	}
	list.Flags().StringVar(&group, "group", "", "only this group")
	list.Flags().StringVar(&missing, "missing", "", "only computers missing updates: critical, important, other, any, or none (compliant)")
	cmd.AddCommand(list,
		&cobra.Command{
			Use: "show ID", Short: "Show a computer and its per-update states", Args: cobra.ExactArgs(1),
			Example: `  bulwark admin computers show agt-3f2k9x7q4m2p8r5t`,
			RunE: func(cmd *cobra.Command, args []string) error {
				return o.call(cmd, "GET", "/api/v1/computers/"+url.PathEscape(args[0]), nil, func(w io.Writer, raw []byte) error {
					var c server.ComputerView
					if err := json.Unmarshal(raw, &c); err != nil {
						return err
					}
					fmt.Fprintf(w, "%s %s group=%s status=%s os=%q arch=%s machine=%s last seen %s certificate expires %s %s\n", c.ID, c.Hostname, c.Group, c.Status, c.OS, c.Arch, c.MachineID, fmtTime(&c.LastSeen), certExpiry(c.CertNotAfter), termtext.Escape(c.Flag))
					var rows [][]string
					for _, u := range c.Updates {
						rows = append(rows, []string{u.Vendor + "/" + u.UpdateID, u.State, fmtTime(&u.UpdatedAt), u.Detail})
					}
					return table(w, "UPDATE\tSTATE\tSINCE\tDETAIL", rows)
				})
			},
		},
		o.deleteByID("remove", "Remove a computer; its certificate is refused from then on",
			"bulwark admin computers remove agt-3f2k9x7q4m2p8r5t", "/api/v1/computers/", "Removed "),
		&cobra.Command{
			Use:     "approve ID",
			Example: `  bulwark admin computers approve agt-3f2k9x7q4m2p8r5t`,
			Short:   "Approve a pending enrollment: it becomes active, other identities of its machine id are revoked",
			Long: `A computer is pending when it enrolled with the machine id of an active computer
without presenting that computer's certificate (a reinstalled machine, or someone
claiming its name). Approve it only if it is the real machine.`,
			Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				return o.call(cmd, "POST", "/api/v1/computers/"+url.PathEscape(args[0])+"/approve", nil, say("Approved "+args[0]+"."))
			},
		},
		&cobra.Command{
			Use: "revoke ID", Short: "Revoke a computer, keeping its history", Args: cobra.ExactArgs(1),
			Example: `  bulwark admin computers revoke agt-3f2k9x7q4m2p8r5t`,
			RunE: func(cmd *cobra.Command, args []string) error {
				return o.call(cmd, "POST", "/api/v1/computers/"+url.PathEscape(args[0])+"/revoke", nil, say("Revoked "+args[0]+"."))
			},
		},
	)
	return cmd
}

func adminTokensCmd(o *adminOptions) *cobra.Command {
	cmd := &cobra.Command{Use: "tokens", Short: "API and enrollment tokens: list, create, revoke"}
	var kind string
	list := &cobra.Command{
		Use: "list", Short: "List tokens (never their secrets)", Args: cobra.NoArgs,
		Example: `  bulwark admin tokens list --kind enroll`,
		RunE: func(cmd *cobra.Command, args []string) error {
			p := "/api/v1/tokens"
			if kind != "" {
				p += "?kind=" + url.QueryEscape(kind)
			}
			return o.call(cmd, "GET", p, nil, listTable("tokens", "ID\tKIND\tROLE/GROUP\tUSES\tEXPIRES\tSTATE\tNAME", func(t store.Token) []string {
				what := t.Role
				if t.Kind == store.KindEnroll {
					what = "group " + t.Group
					if t.ClientGroup {
						what += " (agent may choose)"
					}
				}
				uses := fmt.Sprint(t.Uses)
				if t.MaxUses > 0 {
					uses += "/" + fmt.Sprint(t.MaxUses)
				}
				state := "active"
				if t.RevokedAt != nil {
					state = "revoked"
				} else if t.ExpiresAt != nil && time.Now().After(*t.ExpiresAt) {
					state = "expired"
				}
				return []string{t.ID, t.Kind, what, uses, fmtTime(t.ExpiresAt), state, t.Name}
			}))
		},
	}
	list.Flags().StringVar(&kind, "kind", "", "api or enroll")
	var req server.TokenRequest
	var expiresIn time.Duration
	create := &cobra.Command{
		Use: "create", Short: "Create a token; its secret is printed this once", Args: cobra.NoArgs,
		Example: `  bulwark admin tokens create --kind enroll --group web --max-uses 50 --expires-in 7d > enroll.token
  bulwark admin tokens create --kind api --role viewer --name grafana`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if expiresIn < 0 {
				return fmt.Errorf("--expires-in %s: use a positive duration such as 24h or 7d", expiresIn)
			}
			if expiresIn > 0 {
				req.ExpiresIn = expiresIn.String()
			}
			return o.call(cmd, "POST", "/api/v1/tokens", req, func(w io.Writer, raw []byte) error {
				var r server.TokenResponse
				if err := json.Unmarshal(raw, &r); err != nil {
					return err
				}
				fmt.Fprintf(w, "%s\n", r.Token)
				fmt.Fprintf(cmd.ErrOrStderr(), "Token %s (%s), expires %s. The secret above is not stored and will not be shown again.\n", r.Info.ID, r.Info.Kind, fmtTime(r.Info.ExpiresAt))
				return nil
			})
		},
	}
	f := create.Flags()
	f.StringVar(&req.Kind, "kind", "enroll", "api or enroll")
	f.StringVar(&req.Name, "name", "", "a note saying what the token is for")
	f.StringVar(&req.Role, "role", "", "api tokens: admin, approver or viewer")
	f.StringVar(&req.Group, "group", "", "enroll tokens: the group agents join (default: default)")
	f.BoolVar(&req.ClientGroup, "client-group", false, "enroll tokens: let agents ask for their group (client-side targeting)")
	f.IntVar(&req.MaxUses, "max-uses", 0, "enroll tokens: how many enrollments (0 = unlimited)")
	f.DurationVar(&expiresIn, "expires-in", 0, "lifetime, e.g. 24h or 7d (default: 24h for enroll tokens, none for api tokens)")
	cmd.AddCommand(list, create,
		o.deleteByID("revoke", "Revoke a token", "bulwark admin tokens revoke tok-h4n2ez47", "/api/v1/tokens/", "Revoked "),
	)
	return cmd
}

func adminSyncCmd(o *adminOptions) *cobra.Command {
	cmd := &cobra.Command{Use: "sync", Short: "Sync vendor repositories now, or show sync history"}
	var vendor string
	var wait bool
	run := &cobra.Command{
		Use: "run", Short: "Sync now", Args: cobra.NoArgs,
		Example: `  bulwark admin sync run
  bulwark admin sync run --vendor example --follow`,
		RunE: func(cmd *cobra.Command, args []string) error {
			p := "/api/v1/sync"
			if wait {
				p += "?wait=true"
				// On a terminal, follow the sync as it runs.
				bar := progress.New(cmd.ErrOrStderr(), progress.Bytes)
				if !o.out.Data() {
					stop := o.followSync(cmd, vendor, bar)
					defer stop()
				}
			}
			return o.call(cmd, "POST", p, server.SyncRequest{Vendor: vendor}, func(w io.Writer, raw []byte) error {
				if !wait {
					_, err := fmt.Fprintln(w, "Sync queued.")
					return err
				}
				return printRuns(w, raw)
			})
		},
	}
	run.Flags().StringVar(&vendor, "vendor", "", "only this vendor repository")
	run.Flags().BoolVar(&wait, "follow", false, "wait for the sync to finish and print its result; on a terminal, draw its progress (updates, bytes, rate, time left) meanwhile")
	var limit int
	history := &cobra.Command{
		Use: "history", Short: "Show recent syncs, newest first", Args: cobra.NoArgs,
		Example: `  bulwark admin sync history --limit 5`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.call(cmd, "GET", fmt.Sprintf("/api/v1/sync?limit=%d", limit), nil, printRuns)
		},
	}
	history.Flags().IntVar(&limit, "limit", 20, "how many runs")
	cmd.AddCommand(run, history)
	return cmd
}

// followSync draws the progress of a sync the server runs, polling
// GET /api/v1/sync/progress: for each vendor repository in turn, the
// updates scanned of those to scan, the payload bytes on disk of those to
// fetch, the rate and the time left (the totals grow while the server
// learns them). A repository's line stays on the terminal when it ends,
// marked with its result. It draws only on a terminal (bar decides), and
// stop ends it.
func (o *adminOptions) followSync(cmd *cobra.Command, vendor string, bar *progress.Bar) (stop func()) {
	c, err := o.client(cmd.InOrStdin(), io.Discard)
	if err != nil || !bar.Drawing() {
		return func() {}
	}
	ctx := cmd.Context()
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		var cur *server.SyncProgress // the run on the line
		label := func(p *server.SyncProgress, state string) string {
			return "sync " + termtext.Escape(p.Vendor) + state
		}
		show := func(p *server.SyncProgress, state string) {
			bar.Show(label(p, state), p.UpdatesDone, p.UpdatesTotal, p.BytesDone, p.BytesTotal)
		}
		// ended marks the line of a run that left the list with its
		// result from the history.
		ended := func(p *server.SyncProgress) {
			var h struct{ Runs []store.SyncRun }
			if c.do(ctx, "GET", "/api/v1/sync?limit=20", nil, &h) != nil {
				return
			}
			for _, r := range h.Runs {
				if r.ID != p.ID {
					continue
				}
				if r.Status == store.SyncOK {
					p.UpdatesDone, p.BytesDone = p.UpdatesTotal, p.BytesTotal
				}
				show(p, ": "+r.Status)
			}
		}
		for {
			var live struct{ Syncs []server.SyncProgress }
			if c.do(ctx, "GET", "/api/v1/sync/progress", nil, &live) == nil {
				var now *server.SyncProgress
				for i := range live.Syncs {
					if vendor == "" || live.Syncs[i].Vendor == vendor {
						now = &live.Syncs[i]
						break
					}
				}
				if cur != nil && (now == nil || now.ID != cur.ID) {
					ended(cur)
				}
				if now != nil {
					if cur == nil || now.ID != cur.ID {
						bar.Start(label(now, ""), now.UpdatesDone, now.UpdatesTotal, now.BytesTotal)
					}
					show(now, "")
				}
				cur = now
			}
			select {
			case <-quit:
				// The answer came: the runs on the line have ended.
				if cur != nil {
					ended(cur)
				}
				return
			case <-ctx.Done():
				return
			case <-time.After(250 * time.Millisecond):
			}
		}
	}()
	return func() {
		close(quit)
		<-done
		bar.Done()
	}
}

var printRuns = listTable("runs", "ID\tVENDOR\tTRIGGER\tSTATUS\tSTARTED\tUPDATES\tPAYLOADS\tBYTES\tERROR", func(s store.SyncRun) []string {
	return []string{fmt.Sprint(s.ID), s.Vendor, s.Trigger, s.Status, fmtTime(&s.StartedAt),
		fmt.Sprint(s.UpdatesFetched), fmt.Sprint(s.PayloadsFetched), progress.HumanBytes(s.BytesFetched), s.Error}
})

// certExpiry shows when an agent's certificate expires ("-" for agents
// enrolled before the server recorded it).
func certExpiry(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return fmtTime(&t)
}

// allComputers reads every page of the computer list (the API answers a
// page at a time with a cursor in next).
func (o *adminOptions) allComputers(cmd *cobra.Command, q url.Values) ([]store.Computer, error) {
	c, err := o.client(cmd.InOrStdin(), cmd.ErrOrStderr())
	if err != nil {
		return nil, err
	}
	var all []store.Computer
	for {
		var page struct {
			Computers []store.Computer `json:"computers"`
			Next      string           `json:"next"`
		}
		if err := c.do(cmd.Context(), "GET", "/api/v1/computers?"+q.Encode(), nil, &page); err != nil {
			return nil, err
		}
		all = append(all, page.Computers...)
		if page.Next == "" {
			return all, nil
		}
		q.Set("after", page.Next)
	}
}
