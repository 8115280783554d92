package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/bulwarkhq/bulwark/internal/agent"
	"github.com/bulwarkhq/bulwark/internal/facts"
	"github.com/bulwarkhq/bulwark/internal/sdnotify"
	"github.com/bulwarkhq/bulwark/internal/termtext"
	"github.com/bulwarkhq/bulwark/internal/tuf"
	"github.com/bulwarkhq/bulwark/internal/version"
	"github.com/bulwarkhq/bulwark/internal/wire"
)

func newAgentEnrollCmd() *cobra.Command {
	var o agent.EnrollOptions
	var config, root, arch, tokenFile string
	var vendorPins []string
	var out *outputFormat
	cmd := &cobra.Command{
		Use:   "enroll --server URL --token-file FILE --ca-fingerprint sha256:… --site-root sha256:…",
		Short: "Join this machine to an update server",
		Long: `Enroll this machine with an update server: pin the site CA by the fingerprint
that ` + "`bulwark server`" + ` printed, send a certificate request and the machine's facts
(machine id, hostname, OS, architecture) with an enrollment token, and keep the
client certificate, the site and vendor roots and the agent id in the state
directory (0700). The private key never leaves the machine. The server part of
the configuration (server, ca_fingerprint, group, state_dir, root) is written
to its own drop-in, CONFIG.d/50-enrollment.yaml; the file --config names (a
dpkg conffile, with the administrator's policy and comments) is never written.

The token comes from --token-file FILE (mode 0600; a file other users can read
is refused) or --token-file - (stdin). --token works but shows the token to
every user of the machine in ps.

Enrolling again on an enrolled machine (same state directory, same site CA)
presents the current client certificate, and the server replaces the old
identity at once. An enrollment that claims the machine id of an enrolled
computer without its certificate stays pending until an admin approves it
(` + "`bulwark admin computers approve`" + `).

--site-root pins the site's first TUF root (printed with the enrollment
command): a server that hands out another site root is refused. The agent then
uses a vendor repository only when its root is the one the site root's signed
vendor list names (signed with the offline site root key), or the one pinned
here with --vendor NAME=sha256:…, which decides for that vendor. Enrolling
again starts the TUF caches afresh (after a server was rebuilt).`,
		Example: `  bulwark agent enroll --server https://updates.example:8443 --token-file enroll.token --ca-fingerprint sha256:… --site-root sha256:…
  printf '%s\n' "$TOKEN" | bulwark agent enroll --server https://updates.example:8443 --token-file - --ca-fingerprint sha256:… --site-root sha256:…
  bulwark agent enroll … --vendor example=sha256:…   # pin a vendor root out of band
  bulwark agent enroll … --group web-servers      # ask for a group (client-side targeting)
  bulwark agent enroll … --state-dir ./state --root ./image --config ./agent.yaml   # a directory root, unprivileged`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := facts.New(facts.Config{Root: root, Arch: arch})
			if err != nil {
				return err
			}
			inv, err := m.Inventory()
			if err != nil {
				return err
			}
			if inv.MachineID == "" {
				return fmt.Errorf("no machine id in %s: run systemd-machine-id-setup (or write one for a directory root)", filepath.Join(m.Root(), "etc/machine-id"))
			}
			host := inv.Hostname
			if host == "" && m.Root() == "/" {
				host, _ = os.Hostname()
			}
			if o.VendorPins, err = tuf.ParseVendorPins("vendor", vendorPins); err != nil {
				return err
			}
			o.Facts = wire.Facts{MachineID: inv.MachineID, Hostname: host, OS: strings.TrimSpace(inv.OSID + " " + inv.OSVersionID), Arch: inv.Arch}
			switch {
			case tokenFile != "" && o.Token != "":
				return errors.New("give the enrollment token once: --token-file or --token, not both")
			case tokenFile != "":
				if o.Token, err = readTokenFile("token-file", tokenFile, cmd.InOrStdin()); err != nil {
					return err
				}
			case o.Token != "":
				tokenOnCommandLine(cmd.ErrOrStderr(), "token", "token-file", "")
			default:
				return errors.New("no enrollment token: give --token-file FILE (or - for stdin); create one with `bulwark admin tokens create --kind enroll`")
			}
			e, err := agent.Enroll(cmd.Context(), o)
			if err != nil {
				return err
			}
			fc := agent.FileConfig{Server: o.Server, CAFingerprint: o.CAFingerprint, Group: o.Group, StateDir: o.StateDir}
			if m.Root() != "/" {
				fc.Root = m.Root()
			}
			// The server part goes to enrollment's own drop-in; the
			// administrator's file (a dpkg conffile) is never written.
			if err := agent.SaveEnrollment(config, fc); err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if out.Data() {
				repo := func(r wire.RepoRef) map[string]string {
					return map[string]string{"name": r.Name, "metadata_url": r.MetadataURL, "targets_url": r.TargetsURL}
				}
				vendors := []map[string]string{}
				for _, v := range e.Vendors {
					vendors = append(vendors, repo(v))
				}
				return out.print(w, map[string]any{"agent_id": e.AgentID, "group": e.Group, "status": e.Status, "message": e.Message,
					"site": repo(e.Site), "vendors": vendors, "config": config, "state_dir": o.StateDir})
			}
			fmt.Fprintf(w, "Enrolled as %s in group %s.\n", e.AgentID, e.Group)
			fmt.Fprintf(w, "  site repository: %s\n", e.Site.MetadataURL)
			for _, v := range e.Vendors {
				fmt.Fprintf(w, "  vendor %s: %s\n", v.Name, v.MetadataURL)
			}
			fmt.Fprintf(w, "Configuration: %s (server part in %s). Start the agent: bulwark agent run --config %s\n", config, filepath.Join(agent.DropInDir(config), agent.EnrollmentFile), config)
			if e.Status == "pending" {
				fmt.Fprintf(w, "Pending: %s\nThe server refuses this computer until an admin approves it.\n", termtext.Escape(e.Message))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Server, "server", "", "the update server's URL (https://host:8443)")
	f.StringVar(&tokenFile, "token-file", "", "read the enrollment token from this file (mode 0600), or from stdin with -")
	f.StringVar(&o.Token, "token", "", "the enrollment token itself; visible to other users in ps: prefer --token-file")
	f.StringVar(&o.CAFingerprint, "ca-fingerprint", "", "the site CA's fingerprint (sha256:…), as bulwark server printed it")
	f.StringVar(&o.SiteRootFingerprint, "site-root", "", "the site's first TUF root fingerprint (sha256:…), as bulwark server printed it")
	f.StringArrayVar(&vendorPins, "vendor", nil, "trust this vendor root out of band: NAME=sha256:<fingerprint of its metadata/1.root.json> (repeatable)")
	f.StringVar(&o.Group, "group", "", "ask for this computer group (when the token allows it)")
	f.StringVar(&o.StateDir, "state-dir", "/var/lib/bulwark", "state directory (0700)")
	aliasFlag(cmd, "state", "state-dir")
	f.StringVar(&config, "config", agent.DefaultConfigPath, "configuration file to write")
	f.StringVar(&root, "root", "/", "the root this agent manages (a directory for golden images and tests)")
	f.StringVar(&arch, "arch", "", "dpkg architecture of a directory root (default: this machine's)")
	out = addOutputFlag(cmd)
	for _, r := range []string{"server", "ca-fingerprint", "site-root"} {
		cmd.MarkFlagRequired(r)
	}
	return cmd
}

func newAgentRunCmd() *cobra.Command {
	var config, arch string
	var once, full bool
	var out *outputFormat
	cmd := &cobra.Command{
		Use: "run [--once [--full]]",
		Example: `  bulwark agent run
  bulwark agent run --once --config ./agent.yaml --log-level debug
  bulwark agent run --once --full   # a full cycle even when nothing changed`,
		Short: "Run the agent: check in, download, install by policy, report",
		Long: `Run the agent as a daemon (the systemd unit in dist/systemd runs this): check in
every detection_interval (default 22h) plus random jitter, sooner when the
network changes, with backoff while the server is unreachable; download approved
updates in the background; install them by the policy in one pass with at most
one reboot; report every state change; and serve ` + "`bulwark agent status|updates|install`" + `
on the control socket. The server may deliver a central policy for the
computer's group at check-in (` + "`bulwark admin groups policy`" + `): a setting it sets
wins over this file unless the policy lists it in allow_local; a setting it
leaves unset comes from this file. ` + "`bulwark agent status`" + ` shows where each
setting in effect comes from.

--once checks in once and exits (for cron and tests); it exits non-zero when
an approved update failed, naming each with its reason. Like the daemon, it
asks the server whether anything changed since the last full cycle (the
answer's tag is kept in the state directory, checkin.json): a full cycle
(refresh and verify the repositories, plan, download, install, report) runs
unless the server answers "nothing changed", the last full cycle (by the
daemon or an earlier --once) is less than 6h old, and nothing is due since
(a deadline or maintenance window, a reboot that finishes updates, a change
of the policy or of dpkg's database). Then it only delivers queued state
changes and says so: "No cycle ran". --once --full always runs a full cycle.

One agent runs per state directory (a lock in it): a second refuses to start.
SIGHUP re-reads the policy from the configuration file; SIGTERM or SIGINT stop
the agent, letting a package being installed finish first (dpkg is never
killed half-way). Under systemd (Type=notify) it reports READY=1 and sends
watchdog keep-alives.

Settings come from, lowest first: defaults, the configuration file (YAML) and
then the *.yaml files in its drop-in directory (CONFIG.d, e.g.
/etc/bulwark/agent.yaml.d) in lexical order, then BULWARK_AGENT_* variables (an
empty one counts as unset), then flags, each overriding the keys it sets;
enrollment writes its own drop-in 50-enrollment.yaml. A group policy sits
between the defaults and these (see above). A key the file does not know, or a
bad value, is refused naming the file and key, the variable or the flag. The
settings (the flags below say what each takes):
` + agent.Table.Describe() + `
reboot_command: [] never reboots; vendor_pins {NAME: sha256:…} pins vendor
roots on this machine like enroll --vendor (the two must agree) and for
agent install --from-media; lockdown_profile is audited each cycle and reported
(audit only; a group's policy overrides it); metrics_textfile is a *.prom file
for node_exporter's textfile collector, written after each check-in.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if full && !once {
				return &usageError{cmd: cmd, err: errors.New("--full goes with --once (the daemon decides by itself when a full cycle is due)")}
			}
			layers := agent.Layers{Environ: os.Environ, Flags: cmd.Flags()}
			settings, err := agent.Load(config, layers)
			if errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("%w: enroll first with `bulwark agent enroll`, or name the file with --config", err)
			} else if err != nil {
				return err
			}
			log, level, err := newLogger(cmd.ErrOrStderr(), settings.Log.Level, settings.Log.Format)
			if err != nil {
				return err
			}
			// SIGHUP re-reads the policy (below); it never kills the agent.
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			// One agent per state directory: a second one refuses here,
			// before it touches the journals or the control socket.
			release, err := agent.Lock(settings.StateDir)
			if err != nil {
				return err
			}
			defer release()
			d, sc, closeAll, err := agent.Build(settings, arch, version.String(), log)
			if err != nil {
				return err
			}
			defer closeAll()
			// The daemon stops cleanly on SIGTERM (systemd) and SIGINT,
			// finishing its journal writes, whoever started it.
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			showCert := func() {
				if nb, na, err := sc.CertValidity(); err == nil {
					d.SetCertValidity(nb, na)
				}
			}
			showCert()
			if err := d.WriteTextfile(); err != nil {
				log.Warn("metrics textfile", "err", err)
			}
			checkIn := func(ctx context.Context) error {
				// Between check-ins the agent idles for hours: give the
				// memory a cycle used back to the system, and page out
				// the executable's pages it touched. (--once exits.)
				if !once {
					defer agent.ReleaseIdleMemory()
					// Nothing is said for hours: the server need not
					// hold the connection (the next one resumes the TLS
					// session).
					defer sc.CloseIdleConnections()
				}
				// The client certificate is renewed at two thirds of its
				// lifetime, before anything else uses it.
				if renewed, err := sc.RenewIfDue(ctx, settings.StateDir, time.Now()); err != nil {
					if errors.Is(err, agent.ErrCertExpired) {
						return err
					}
					log.Warn("certificate renewal failed; retrying at the next check-in", "err", err)
				} else if renewed {
					showCert()
					log.Info("client certificate renewed", "not_after", d.Status().CertNotAfter)
				}
				return d.CheckInWith(ctx, sc)
			}
			if once {
				// One cycle, then exit: collecting garbage that the exit
				// frees anyway was a fifth of its CPU (bench/agent). A
				// memory limit still bounds the heap; GOGC or GOMEMLIMIT
				// in the environment take precedence.
				if os.Getenv("GOGC") == "" && os.Getenv("GOMEMLIMIT") == "" {
					debug.SetGCPercent(-1)
					debug.SetMemoryLimit(256 << 20)
				}
				if !full {
					// A conditional check-in on the answer the last full
					// cycle ran on (checkin.json).
					d.LoadLastFull(sc)
				}
				err := checkIn(ctx)
				if out.Data() {
					out.print(cmd.OutOrStdout(), map[string]any{"status": d.Status(), "updates": d.Updates(), "check_in": d.LastOutcome()})
				} else {
					printAgentSummary(cmd, d)
					if err == nil {
						printOutcome(cmd, d.LastOutcome())
					}
				}
				if err != nil {
					return err
				}
				return failedUpdates(d.Updates())
			}
			go func() {
				if err := agent.ServeControl(ctx, settings.Socket, d); err != nil {
					log.Error("control socket", "err", err)
				}
			}()
			// Type=notify: ready once the daemon is built and serving; a
			// watchdog keep-alive while the process runs (WatchdogSec in
			// the unit restarts an agent that hangs).
			notify := os.Getenv("NOTIFY_SOCKET")
			if err := sdnotify.Notify(notify, "READY=1"); err != nil {
				log.Warn("sd_notify", "err", err)
			}
			defer sdnotify.Notify(notify, "STOPPING=1")
			if every, err := sdnotify.WatchdogInterval(os.Getenv("WATCHDOG_USEC"), os.Getenv("WATCHDOG_PID"), os.Getpid()); err != nil {
				log.Warn("systemd watchdog", "err", err)
			} else if every > 0 {
				go sdnotify.KeepAlive(ctx, notify, every, nil)
			}
			go func() {
				for {
					select {
					case <-ctx.Done():
						return
					case <-hup:
					}
					sdnotify.Notify(notify, "RELOADING=1")
					// The same layers again: files, variables, flags.
					if s, err := agent.Load(config, layers); err != nil {
						log.Error("SIGHUP: the configuration does not load; keeping the running policy", "err", err)
					} else if err := d.SetLocal(s.Local); err != nil {
						log.Error("SIGHUP: the configuration does not apply under the group policy; keeping the running policy", "err", err)
					} else {
						if lv, err := parseLevel(s.Log.Level); err == nil {
							level.Set(lv)
						}
						log.Info("SIGHUP: policy reloaded", "mode", d.Status().Mode, "config", config)
					}
					sdnotify.Notify(notify, "READY=1")
				}
			}()
			netChanged, err := agent.WatchNetwork(ctx)
			if err != nil {
				log.Warn("cannot watch the network; checking in on the schedule only", "err", err)
			}
			agent.Schedule{Interval: settings.Interval, Current: d.Interval, Scheduled: d.SetNextCheckIn}.Loop(ctx, checkIn, netChanged, func(err error, wait time.Duration) {
				log.Warn("check-in failed; retrying", "err", err, "retry_in", wait.Round(time.Second))
			})
			return nil
		},
	}
	cmd.Flags().StringVar(&config, "config", agent.DefaultConfigPath, "configuration file; the *.yaml files of its drop-in directory CONFIG.d are read after it")
	cmd.Flags().StringVar(&arch, "arch", "", "dpkg architecture of a directory root (default: this machine's)")
	cmd.Flags().BoolVar(&once, "once", false, "check in once and exit: a full cycle unless nothing changed since a fresh one (see above)")
	cmd.Flags().BoolVar(&full, "full", false, "with --once: run a full cycle even when nothing changed")
	// --socket is the agent command's, for status, updates and install too.
	agent.Table.Without("socket").Register(cmd.Flags())
	out = addOutputFlag(cmd)
	return cmd
}

func printAgentSummary(cmd *cobra.Command, d *agent.Daemon) {
	w := termtext.NewWriter(cmd.OutOrStdout())
	st := d.Status()
	e := termtext.Escape
	fmt.Fprintf(w, "Agent %s, group %s, policy %s.\n", e(st.AgentID), e(st.Group), e(string(st.Mode)))
	for _, u := range d.Updates() {
		line := fmt.Sprintf("  %-28s %-26s %s", e(u.Key), e(string(u.State)), e(u.Title))
		if u.Reason != "" {
			line += " — " + e(u.Reason)
		}
		fmt.Fprintln(w, line)
	}
	if st.PendingReboot {
		fmt.Fprintln(w, "A reboot is pending to finish installed updates.")
	}
}

// printOutcome says whether --once ran a full cycle, and if not, that the
// states shown are the last full cycle's.
func printOutcome(cmd *cobra.Command, o agent.CheckInOutcome) {
	w := cmd.OutOrStdout()
	if o.Full {
		if o.Why != "" {
			fmt.Fprintf(w, "Full cycle ran: %s.\n", o.Why)
		}
		return
	}
	fmt.Fprintf(w, "No cycle ran: the server's answer is unchanged since the full cycle at %s and nothing is due; the states above are that cycle's. --full runs one anyway.\n",
		o.LastFull.UTC().Format("2006-01-02 15:04:05 UTC"))
	if o.Reported {
		fmt.Fprintln(w, "Queued state changes were delivered to the server.")
	}
}

// failedUpdates is --once's verdict: an error naming every approved update
// that is in state failed after the cycle, so that cron and scripts see it
// in the exit status.
func failedUpdates(recs []agent.UpdateRecord) error {
	var failed []string
	for _, r := range recs {
		if r.State == agent.StateFailed {
			failed = append(failed, r.Key+" ("+r.Reason+")")
		}
	}
	if len(failed) == 0 {
		return nil
	}
	return fmt.Errorf("%d approved update(s) failed: %s", len(failed), strings.Join(failed, "; "))
}
