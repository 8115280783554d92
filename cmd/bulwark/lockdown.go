//go:build !agentonly

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/bulwarkhq/bulwark/internal/lockdown"
	"github.com/bulwarkhq/bulwark/internal/media"
)

// lockdownFlags are the flags every lockdown subcommand shares.
type lockdownFlags struct {
	root   string
	rules  []string
	state  string
	output string
}

func (f *lockdownFlags) addRoot(c *cobra.Command) {
	c.Flags().StringVar(&f.root, "root", "/", "root directory of the system to work on (a mounted image or test tree); / is the running system")
	c.Flags().StringArrayVar(&f.rules, "rules", nil, "directory of extra *.yaml rule and profile files, also inside an ISO image or tar archive such as MEDIA.iso/lockdown (adds to or overrides the built-in ones; repeatable)")
}

// reportFormats are audit's and apply's -o values: the shared ones and
// lockdown's own report formats (HTML, JUnit).
func reportFormats() []string {
	fs := append([]string(nil), outputFormats...)
	for _, f := range lockdown.Formats {
		if !slices.Contains(fs, f) {
			fs = append(fs, f)
		}
	}
	return fs
}

func (f *lockdownFlags) addOutput(c *cobra.Command) {
	c.Flags().StringVarP(&f.output, "output", "o", "text", "report format: "+strings.Join(reportFormats(), ", "))
}

// writeReport writes an audit or apply report in the format of -o.
func (f *lockdownFlags) writeReport(w io.Writer, rep *lockdown.Report) error {
	if f.output == "yaml" {
		return newOutputFormat("yaml").print(w, rep)
	}
	return lockdown.WriteReport(w, rep, f.output)
}

func (f *lockdownFlags) addState(c *cobra.Command) {
	c.Flags().StringVar(&f.state, "state-dir", "", "directory of the journal that undo reads (default: ROOT/var/lib/bulwark/lockdown, so an image carries its own undo)")
	aliasFlag(c, "state", "state-dir")
}

// stateDir is --state-dir, or the journal inside --root.
func (f *lockdownFlags) stateDir() string {
	if f.state != "" {
		return f.state
	}
	return lockdown.DefaultStateDir(f.root)
}

func (f *lockdownFlags) checkOutput() error {
	if slices.Contains(reportFormats(), f.output) {
		return nil
	}
	return fmt.Errorf("--output %q is not one of %s", f.output, strings.Join(reportFormats(), ", "))
}

// catalog loads the rules, and a profile given as a file path. A --rules
// directory may be inside offline media's ISO image or a tar archive
// (disc.iso/lockdown): only that directory is extracted, to a temporary
// copy that is gone once the rules are read.
func (f *lockdownFlags) catalog(profile string) (*lockdown.Catalog, string, error) {
	cat, err := lockdown.LoadCatalog()
	if err != nil {
		return nil, "", err
	}
	for _, r := range f.rules {
		dir, done, err := media.OpenPath(context.Background(), r)
		if err != nil {
			return nil, "", fmt.Errorf("--rules %s: %w", r, err)
		}
		err = cat.LoadFS(os.DirFS(dir), r)
		done()
		if err != nil {
			return nil, "", err
		}
	}
	if strings.HasSuffix(profile, ".yaml") || strings.HasSuffix(profile, ".yml") || strings.Contains(profile, "/") {
		names, err := cat.LoadProfileFile(profile)
		if err != nil {
			return nil, "", err
		}
		if len(names) != 1 {
			return nil, "", fmt.Errorf("--profile %s: the file must define exactly one profile, it defines %d", profile, len(names))
		}
		profile = names[0]
	}
	return cat, profile, nil
}

// selection checks the output flag and selects the rules of --profile, as
// audit and apply both begin.
func (f *lockdownFlags) selection(profile string) (*lockdown.Selection, error) {
	if err := f.checkOutput(); err != nil {
		return nil, err
	}
	if profile == "" {
		return nil, errors.New("--profile is required: one of end-user, small-business, sysadmin, web-server, or a profile file")
	}
	cat, name, err := f.catalog(profile)
	if err != nil {
		return nil, err
	}
	return cat.Select(name, time.Now())
}

func newLockdownCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "lockdown",
		Short: "Audit, apply and undo hardening profiles",
		Long: `Lockdown closes the doors that should never have been open.

Profiles: end-user (a workstation: keeps printing and discovery), small-business
(a server a non-specialist runs), sysadmin (strict), web-server (small-business
plus nginx rules). Rules are YAML built into the binary; --rules DIR adds more,
and --profile FILE.yaml uses a custom profile (extends, exclude, vars, waivers).

  bulwark lockdown audit --profile small-business --root /mnt/image
  bulwark lockdown apply --profile small-business --root /mnt/image
  bulwark lockdown undo --root /mnt/image`,
	}
	cmd.AddCommand(newLockdownListCmd(), newLockdownShowCmd(), newLockdownAuditCmd(), newLockdownApplyCmd(), newLockdownUndoCmd())
	return cmd
}

func newLockdownListCmd() *cobra.Command {
	var f lockdownFlags
	var out *outputFormat
	c := &cobra.Command{
		Use: "list",
		Example: `  bulwark lockdown list
  bulwark lockdown list -o yaml`,
		Short: "List the profiles and rules",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cat, _, err := f.catalog("")
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if out.Data() {
				return out.print(w, map[string]any{"profiles": cat.Profiles(), "rules": cat.Rules()})
			}
			fmt.Fprintln(w, "Profiles:")
			for _, p := range cat.Profiles() {
				fmt.Fprintf(w, "  %-16s %s\n", p.Name, p.Title)
			}
			fmt.Fprintf(w, "\nRules (%d):\n", len(cat.Rules()))
			for _, r := range cat.Rules() {
				fmt.Fprintf(w, "  %-36s %-6s %-15s %s\n", r.ID, r.Severity, r.Type, r.Title)
			}
			return nil
		},
	}
	c.Flags().StringArrayVar(&f.rules, "rules", nil, "directory of extra *.yaml rule and profile files")
	out = addOutputFlag(c)
	return c
}

func newLockdownShowCmd() *cobra.Command {
	var f lockdownFlags
	var out *outputFormat
	c := &cobra.Command{
		Use: "show RULE|PROFILE",
		Example: `  bulwark lockdown show ssh-permit-root-login
  bulwark lockdown show small-business`,
		Short: "Show one rule or profile in full",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cat, _, err := f.catalog("")
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if r, ok := cat.Rule(args[0]); ok {
				res, err := cat.Instantiate(r, nil)
				if err != nil {
					return err
				}
				desc := res.Describe()
				if out.Data() {
					return out.print(w, map[string]any{"rule": r, "wants": desc})
				}
				fmt.Fprintf(w, "%s: %s\n\n%s\n\n", r.ID, r.Title, strings.TrimSpace(r.Rationale))
				fmt.Fprintf(w, "severity:   %s\ndisruption: %s\nprofiles:   %s\ntype:       %s\nwants:      %s\n", r.Severity, r.Disruption, strings.Join(r.Profiles, ", "), r.Type, desc)
				if r.Reload != "" {
					fmt.Fprintf(w, "reload:     %s\n", r.Reload)
				}
				if r.Reboot {
					fmt.Fprintln(w, "reboot:     needed")
				}
				if len(r.Vars) > 0 {
					fmt.Fprintf(w, "variables:  %v\n", r.Vars)
				}
				if len(r.References.CIS) > 0 {
					fmt.Fprintf(w, "CIS:        %s\n", strings.Join(r.References.CIS, ", "))
				}
				if len(r.References.CISNginx) > 0 {
					fmt.Fprintf(w, "CIS NGINX:  %s\n", strings.Join(r.References.CISNginx, ", "))
				}
				if len(r.References.SSG) > 0 {
					fmt.Fprintf(w, "SSG:        %s\n", strings.Join(r.References.SSG, ", "))
				}
				if len(r.References.Lynis) > 0 {
					fmt.Fprintf(w, "Lynis:      %s\n", strings.Join(r.References.Lynis, ", "))
				}
				fmt.Fprintf(w, "defined in: %s\n", r.Source)
				return nil
			}
			if _, ok := cat.Profile(args[0]); ok {
				sel, err := cat.Select(args[0], time.Now())
				if err != nil {
					return err
				}
				p := sel.Profile
				if out.Data() {
					rules := make([]map[string]any, 0, len(sel.Rules))
					for _, s := range sel.Rules {
						rules = append(rules, map[string]any{"id": s.Rule.ID, "severity": s.Rule.Severity, "wants": s.Resource.Describe()})
					}
					return out.print(w, map[string]any{"profile": p, "rules": rules})
				}
				fmt.Fprintf(w, "%s: %s\n\n%s\n\n", p.Name, p.Title, strings.TrimSpace(p.Description))
				if p.Extends != "" {
					fmt.Fprintf(w, "extends: %s\n", p.Extends)
				}
				fmt.Fprintf(w, "rules (%d):\n", len(sel.Rules))
				for _, s := range sel.Rules {
					fmt.Fprintf(w, "  %-36s %-6s %s\n", s.Rule.ID, s.Rule.Severity, s.Resource.Describe())
				}
				for _, wv := range p.Waivers {
					fmt.Fprintf(w, "waiver: %s until %s: %s\n", wv.Rule, wv.Expires, wv.Reason)
				}
				return nil
			}
			return fmt.Errorf("%q is neither a rule nor a profile; `bulwark lockdown list` shows them", args[0])
		},
	}
	c.Flags().StringArrayVar(&f.rules, "rules", nil, "directory of extra *.yaml rule and profile files")
	out = addOutputFlag(c)
	return c
}

func newLockdownAuditCmd() *cobra.Command {
	var f lockdownFlags
	var profile string
	c := &cobra.Command{
		Use: "audit --profile P",
		Example: `  bulwark lockdown audit --profile small-business
  bulwark lockdown audit --profile web-server --root /mnt/image -o html > report.html`,
		Short: "Check a profile's rules; exit status 2 when any fails",
		Long: `Check every rule of a profile and report pass, fail, error, notapplicable or
notchecked (XCCDF's vocabulary) with a severity-weighted score. On the running
system (--root /) the values in force are read (sshd -T, /proc/sys, systemctl);
with another root, the files under it. Exit status 2 when a rule fails
(waived rules do not count).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			sel, err := f.selection(profile)
			if err != nil {
				return err
			}
			eng := newLockdownEngine(cmd)
			rep, err := eng.Audit(cmd.Context(), sel, f.root)
			if err != nil {
				return err
			}
			if err := f.writeReport(cmd.OutOrStdout(), rep); err != nil {
				return err
			}
			if rep.Failed() > 0 {
				return exitCode(2)
			}
			return nil
		},
	}
	c.Flags().StringVar(&profile, "profile", "", "profile name or YAML file")
	f.addRoot(c)
	f.addOutput(c)
	return c
}

func newLockdownEngine(cmd *cobra.Command) *lockdown.Engine {
	log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	return lockdown.NewEngine(log, time.Now, lockdown.ExecCommander{})
}

func newLockdownApplyCmd() *cobra.Command {
	var f lockdownFlags
	var profile string
	var dryRun, yes, force bool
	c := &cobra.Command{
		Use: "apply --profile P",
		Example: `  bulwark lockdown apply --profile small-business --dry-run
  bulwark lockdown apply --profile small-business --root /mnt/image`,
		Short: "Make a profile's failing rules pass, journaled for undo",
		Long: `Plan the changes that make the profile's failing rules pass, show the exact
diff, and (on the running system, unless --yes) ask before writing. Values that
pass only on a compiled-in default are written down too, where auditors read
them. Drop-in files are preferred (sysctl.d, modprobe.d, sudoers.d, nginx
conf.d); sshd settings go into a block at the top of sshd_config, which is
what OpenSCAP reads and what sshd applies first; conflicting lines are
commented out, never deleted. Every path's prior bytes,
mode, owner and modification time are journaled before it changes, in
ROOT/var/lib/bulwark/lockdown (--state-dir elsewhere): a --root image carries its
own undo.
sshd -t, nginx -t and visudo -c validate the result; if they fail, everything
is rolled back. Rules that would lock out the SSH session apply runs in are refused
unless --force. A second apply changes nothing.
Package rules (the sysadmin profile's security tools: aide, fail2ban, ...) are
installed first, with the root's own apt-get from the sources it already has
(chrooted in private namespaces for --root), without recommends; the run
journals what apt installed and undo purges exactly that.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			sel, err := f.selection(profile)
			if err != nil {
				return err
			}
			tree, err := lockdown.NewTree(f.root)
			if err != nil {
				return err
			}
			opts := lockdown.ApplyOptions{StateDir: f.stateDir(), DryRun: dryRun, Force: force}
			if tree.Live() {
				opts.Session = lockdown.DetectSession(os.Getenv, tree)
				if !yes {
					opts.Confirm = confirmChanges(cmd.InOrStdin(), cmd.ErrOrStderr())
					opts.ConfirmInstall = confirmInstall(cmd.InOrStdin(), cmd.ErrOrStderr())
				}
			}
			rep, err := newLockdownEngine(cmd).Apply(cmd.Context(), sel, f.root, opts)
			if err != nil {
				return err
			}
			if f.output == "text" {
				lockdown.WriteChanges(cmd.OutOrStdout(), rep.Changes)
				if len(rep.Changes) > 0 {
					fmt.Fprintln(cmd.OutOrStdout())
				}
			}
			if err := f.writeReport(cmd.OutOrStdout(), rep); err != nil {
				return err
			}
			if rep.Failed() > 0 && !dryRun {
				return exitCode(2)
			}
			return nil
		},
	}
	c.Flags().StringVar(&profile, "profile", "", "profile name or YAML file")
	c.Flags().BoolVar(&dryRun, "dry-run", false, "only show the exact changes")
	c.Flags().BoolVar(&yes, "yes", false, "do not ask before changing the running system")
	c.Flags().BoolVar(&force, "force", false, "apply rules that would lock out the SSH session this runs in")
	f.addRoot(c)
	f.addOutput(c)
	f.addState(c)
	return c
}

// confirmChanges shows the diff and asks on stderr, reading the answer from
// stdin.
func confirmChanges(in io.Reader, out io.Writer) func([]lockdown.Change) (bool, error) {
	return func(changes []lockdown.Change) (bool, error) {
		lockdown.WriteChanges(out, changes)
		fmt.Fprintf(out, "\nApply these %d changes to the running system? [y/N] ", len(changes))
		return readYes(in), nil
	}
}

// confirmInstall lists the packages package rules would install and asks.
func confirmInstall(in io.Reader, out io.Writer) func([]string) (bool, error) {
	return func(pkgs []string) (bool, error) {
		fmt.Fprintf(out, "\nInstall these %d packages with apt-get (and what they depend on): %s? [y/N] ", len(pkgs), strings.Join(pkgs, " "))
		return readYes(in), nil
	}
}

// readYes reads one answer line (byte by byte, so that the next question
// finds the next line) and reports whether it is yes.
func readYes(in io.Reader) bool {
	var line []byte
	b := make([]byte, 1)
	for len(line) < 1024 {
		n, err := in.Read(b)
		if n == 1 {
			if b[0] == '\n' {
				break
			}
			line = append(line, b[0])
		}
		if err != nil {
			break
		}
	}
	answer := strings.ToLower(strings.TrimSpace(string(line)))
	return answer == "y" || answer == "yes"
}

func newLockdownUndoCmd() *cobra.Command {
	var f lockdownFlags
	var force, list bool
	var out *outputFormat
	c := &cobra.Command{
		Use: "undo [RUN]",
		Example: `  bulwark lockdown undo --list
  bulwark lockdown undo
  bulwark lockdown undo --root /mnt/image`,
		Short: "Restore what an apply run changed, byte for byte",
		Long: `Restore every path an apply run changed to its journaled prior bytes, mode,
owner, link target and modification time (the newest run not yet undone when
RUN is omitted). The journal is ROOT/var/lib/bulwark/lockdown unless --state-dir
says otherwise. Refuses, naming the files, when one was changed since the run;
--force restores anyway and keeps a copy of each such file's bytes in the
journal (the paths are printed). --list shows the runs.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			eng := newLockdownEngine(cmd)
			w := cmd.OutOrStdout()
			if list {
				runs, err := eng.Runs(f.stateDir())
				if err != nil {
					return err
				}
				if out.Data() {
					if runs == nil {
						runs = []lockdown.RunRecord{}
					}
					return out.print(w, map[string]any{"runs": runs})
				}
				for _, r := range runs {
					fmt.Fprintf(w, "%s  %-11s %-16s %d rules  %s\n", r.ID, r.Status, r.Profile, len(r.Rules), r.Root)
				}
				return nil
			}
			id := ""
			if len(args) == 1 {
				id = args[0]
			}
			if cmd.Flags().Changed("root") {
				// Undo the newest run on that root (or check that RUN was
				// on it): one journal can hold runs on several images.
				var err error
				if id, err = runOnRoot(eng, f.stateDir(), f.root, id); err != nil {
					return err
				}
			}
			res, err := eng.Undo(cmd.Context(), f.stateDir(), id, force)
			if err != nil {
				return err
			}
			if out.Data() {
				return out.print(w, res)
			}
			fmt.Fprintf(w, "Undid run %s: restored %d paths", res.Run, len(res.Restored))
			if len(res.Unchanged) > 0 {
				fmt.Fprintf(w, ", %d were already as before", len(res.Unchanged))
			}
			fmt.Fprintln(w)
			for _, p := range res.Restored {
				fmt.Fprintf(w, "  %s\n", p)
				if kept, ok := res.Kept[p]; ok {
					fmt.Fprintf(w, "    it had changed since the run; its bytes before this undo are kept in %s\n", kept)
				}
			}
			return nil
		},
	}
	c.Flags().BoolVar(&force, "force", false, "restore files even if they changed since the run")
	c.Flags().BoolVar(&list, "list", false, "list the runs in the journal")
	c.Flags().StringVar(&f.root, "root", "/", "undo the newest run on this root (with RUN: check that RUN was on it)")
	f.addState(c)
	out = addOutputFlag(c)
	return c
}

// runOnRoot picks the newest run on root that can still be undone, or
// checks that run id was on root.
func runOnRoot(eng *lockdown.Engine, state, root, id string) (string, error) {
	want, err := filepath.Abs(root)
	if err != nil {
		return "", err
	}
	runs, err := eng.Runs(state)
	if err != nil {
		return "", err
	}
	for i := len(runs) - 1; i >= 0; i-- {
		r := runs[i]
		got, _ := filepath.Abs(r.Root)
		if r.InRoot {
			// The journal came with the image: its runs are on it,
			// wherever it was mounted when they ran.
			got = want
		}
		switch {
		case id != "" && r.ID == id:
			if got != want {
				return "", fmt.Errorf("run %s was on %s, not on --root %s", id, r.Root, root)
			}
			return id, nil
		case id == "" && got == want && r.Status != lockdown.StatusUndone && r.Status != lockdown.StatusRolledBack:
			return r.ID, nil
		}
	}
	if id != "" {
		return "", fmt.Errorf("%w: %s (see `bulwark lockdown undo --list`)", lockdown.ErrUnknownRun, id)
	}
	return "", fmt.Errorf("nothing to undo on %s: no applied run on that root in %s", root, state)
}
