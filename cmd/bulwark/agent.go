package main

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/bulwarkhq/bulwark/internal/agent"
	"github.com/bulwarkhq/bulwark/internal/progress"
	"github.com/bulwarkhq/bulwark/internal/termtext"
)

func newAgentCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "The update agent on a managed machine",
		Long: `The agent checks in with its update server, learns what its computer group may
install, downloads approved updates in the background, installs them in one
pass with at most one reboot by the machine's policy, and reports every state.

It installs a payload only when the site's approvals (verified from the site
root pinned at enrollment) and the vendor's metadata (verified from the
vendor's root) name the same file with the same length and hash, and the
downloaded bytes match.

status, updates and install talk to the running agent over its control socket
(` + agent.DefaultSocket + `), which root and members of group ` + agent.ControlGroup + ` may use.`,
	}
	agent.Table.Register(cmd.PersistentFlags(), "socket")
	cmd.AddCommand(newAgentEnrollCmd(), newAgentRunCmd(), newAgentStatusCmd(), newAgentUpdatesCmd(), newAgentInstallCmd(), newAgentConfigCmd())
	return cmd
}

// controlClient talks to the running agent at the socket the agent's
// settings name: --socket, BULWARK_AGENT_SOCKET, the configuration (the
// command's --config, else the default file, when it exists), the default.
func controlClient(cmd *cobra.Command) *agent.ControlClient {
	config := agent.DefaultConfigPath
	if f := cmd.Flags().Lookup("config"); f != nil {
		config = f.Value.String()
	}
	return agent.NewControlClient(agent.Socket(config, agent.Layers{Environ: os.Environ, Flags: cmd.Flags()}))
}

func newAgentStatusCmd() *cobra.Command {
	var out *outputFormat
	cmd := &cobra.Command{
		Use: "status",
		Example: `  bulwark agent status
  bulwark agent status -o json`,
		Short: "Show the agent's enrollment, last check-in and update counts",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := controlClient(cmd).Status(cmd.Context())
			if err != nil {
				return err
			}
			if out.Data() {
				return out.print(cmd.OutOrStdout(), st)
			}
			w := tabwriter.NewWriter(termtext.NewWriter(cmd.OutOrStdout()), 0, 4, 2, ' ', 0)
			fmt.Fprintf(w, "Agent:\t%s\n", termtext.Escape(st.AgentID))
			fmt.Fprintf(w, "Server:\t%s\n", termtext.Escape(st.Server))
			fmt.Fprintf(w, "Group:\t%s\n", termtext.Escape(st.Group))
			fmt.Fprintf(w, "Policy:\t%s\n", st.Mode)
			for _, x := range st.Settings {
				fmt.Fprintf(w, "  %s:\t%s (%s)\n", x.Key, termtext.Escape(x.Value), x.From)
			}
			fmt.Fprintf(w, "Last check-in:\t%s\n", when(st.LastCheckIn))
			if st.LastError != "" {
				fmt.Fprintf(w, "Last error:\t%s\n", termtext.Escape(st.LastError))
			}
			fmt.Fprintf(w, "Next check-in:\t%s\n", when(st.NextCheckIn))
			if st.Busy != "" {
				fmt.Fprintf(w, "Now:\t%s\n", termtext.Escape(st.Busy))
			}
			if !st.CertNotAfter.IsZero() {
				fmt.Fprintf(w, "Certificate:\texpires %s, renewed from %s\n", when(st.CertNotAfter), when(st.CertRenewal))
			}
			if st.PendingReboot {
				fmt.Fprintf(w, "Reboot:\tpending: installed updates finish at the next boot\n")
			}
			var states []string
			for s, n := range st.States {
				states = append(states, fmt.Sprintf("%d %s", n, s))
			}
			sort.Strings(states)
			fmt.Fprintf(w, "Updates:\t%s\n", strings.Join(states, ", "))
			return w.Flush()
		},
	}
	out = addOutputFlag(cmd)
	return cmd
}

// downloadsAhead counts the updates an install of keys (or all) will
// download: those asked for that are needed and not downloaded yet.
func downloadsAhead(ups []agent.UpdateRecord, keys []string, all bool) int {
	n := 0
	for _, u := range ups {
		if u.State != agent.StateNeeded {
			continue
		}
		asked := all
		for _, k := range keys {
			asked = asked || k == u.Key || strings.HasSuffix(u.Key, "/"+k)
		}
		if asked {
			n++
		}
	}
	return n
}

func when(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.Local().Format("2006-01-02 15:04:05 MST")
}

func newAgentUpdatesCmd() *cobra.Command {
	var out *outputFormat
	cmd := &cobra.Command{
		Use: "updates",
		Example: `  bulwark agent updates
  bulwark agent updates -o yaml`,
		Short: "List the updates the agent knows: needed, downloaded, installed, failed…",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ups, err := controlClient(cmd).Updates(cmd.Context())
			if err != nil {
				return err
			}
			if out.Data() {
				return out.print(cmd.OutOrStdout(), ups)
			}
			w := tabwriter.NewWriter(termtext.NewWriter(cmd.OutOrStdout()), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "UPDATE\tSTATE\tSEVERITY\tTITLE\tREASON")
			for _, u := range ups {
				e := termtext.Escape
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", e(u.Key), e(string(u.State)), e(u.Severity), e(u.Title), e(u.Reason))
			}
			return w.Flush()
		},
	}
	out = addOutputFlag(cmd)
	return cmd
}

func newAgentInstallCmd() *cobra.Command {
	var all bool
	var out *outputFormat
	var fromMedia installFromMedia
	cmd := &cobra.Command{
		Use: "install [ID...] [--all]",
		Example: `  bulwark agent install --all
  bulwark agent install example/BW-2026-0042
  bulwark agent install --from-media /media/cdrom --vendor example=sha256:…`,
		Short: "Install approved updates now, in the foreground, with progress",
		Long: `Ask the running agent to download (in the foreground, at full allowed speed)
and install the named approved updates, or all approved updates with --all, in
one pass with at most one reboot. Updates are named by id or vendor/id.

With --from-media, on a machine with no server: install every update on offline
media that applies, verified from the vendor roots pinned with --vendor
NAME=sha256:…, in the configuration's vendor_pins (--config), or at the
agent's enrollment (--state), in one pass with at most one reboot.
With --site sha256:… the site's approvals for --group are followed instead.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if fromMedia.media != "" {
				return fromMedia.run(cmd)
			}
			if len(args) == 0 && !all {
				return fmt.Errorf("name the updates to install (see `bulwark agent updates`), or use --all")
			}
			c := controlClient(cmd)
			// "n of N": the updates to download are those asked for that
			// are not downloaded yet.
			count := 0
			if ups, err := c.Updates(cmd.Context()); err == nil {
				count = downloadsAhead(ups, args, all)
			}
			var bar *progress.Bar
			if out.Data() {
				bar = progress.NewWidth(io.Discard, progress.Bytes, func() int { return 0 })
			} else {
				bar = progress.New(cmd.ErrOrStderr(), progress.Bytes)
			}
			n, cur := 0, ""
			res, err := c.Install(cmd.Context(), args, all, func(p agent.Progress) {
				switch p.Phase {
				case "download":
					if p.Update != cur {
						cur, n = p.Update, n+1
						if n > count {
							count = 0 // the estimate was wrong: show no N
						}
						bar.Start(p.Update, n, count, p.Total)
					}
					bar.Set(p.Done, p.Total)
				case "install":
					bar.Done()
					cur = ""
					if !out.Data() {
						fmt.Fprintf(cmd.OutOrStdout(), "installing %s\n", p.Update)
					}
				}
			})
			bar.Done()
			if err != nil {
				return err
			}
			if out.Data() {
				return out.print(cmd.OutOrStdout(), res)
			}
			w := termtext.NewWriter(cmd.OutOrStdout())
			for _, k := range res.Pass.Installed {
				fmt.Fprintf(w, "installed %s\n", k)
			}
			for _, k := range res.Pass.Failed {
				fmt.Fprintf(w, "FAILED    %s (see `bulwark agent updates` for the reason)\n", k)
			}
			if res.Pass.Rebooted {
				fmt.Fprintln(w, "rebooting to finish")
			}
			if len(res.Pass.Failed) > 0 {
				return exitCode(1)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "install every approved update")
	fromMedia.addFlags(cmd)
	out = addOutputFlag(cmd)
	return cmd
}

func newAgentConfigCmd() *cobra.Command {
	var config string
	var out *outputFormat
	cmd := &cobra.Command{
		Use:   "config [--config FILE] [flags]",
		Short: "Show the agent's settings in effect and where each comes from",
		Long: `Layer the agent's settings exactly as ` + "`bulwark agent run`" + ` would with the same
--config file, variables and flags (defaults, the file, its drop-ins in
lexical order, BULWARK_AGENT_* variables, flags) and show each setting's value
and where it comes from: default, a file, a variable or a --flag. A bad value
or an unknown key is refused as the agent would refuse it, naming its source.
The group policy the server delivers comes on top at check-in; ` + "`bulwark agent status`" + `
shows the settings in effect under it.`,
		Example: `  bulwark agent config
  BULWARK_AGENT_MODE=auto bulwark agent config --config ./agent.yaml -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			vals, err := agent.Values(config, agent.Layers{Environ: os.Environ, Flags: cmd.Flags()})
			if err != nil {
				return err
			}
			return printSettings(cmd.OutOrStdout(), out, vals)
		},
	}
	cmd.Flags().StringVar(&config, "config", agent.DefaultConfigPath, "configuration file; the *.yaml files of its drop-in directory CONFIG.d are read after it")
	agent.Table.Without("socket").Register(cmd.Flags())
	out = addOutputFlag(cmd)
	return cmd
}
