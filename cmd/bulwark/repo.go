//go:build !agentonly

package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/bulwarkhq/bulwark/internal/catalog"
	"github.com/bulwarkhq/bulwark/internal/progress"
	"github.com/bulwarkhq/bulwark/internal/tuf"
)

func newRepoCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "repo",
		Short: "Create vendor repositories and sign security updates into them",
		Long: `A vendor repository is a TUF repository (spec 1.0) that a publisher signs
security updates into. Serve DIR/metadata and DIR/targets with any static file
server (never DIR/keys): mirrors carry it byte for byte, and every client
verifies every byte from the repository's root.

Each update is a directory of targets: updates/<id>/update.json, its signed
metadata, and its payload files. Targets are spread over hashed bins (TAP 15)
so that looking one update up costs one small bin whatever the catalog size.`,
	}
	cmd.AddCommand(newRepoInitCmd(), newRepoPublishCmd(), newRepoVerifyCmd(), newRepoListCmd(),
		newRepoShowCmd(), newRepoRefreshCmd(), newRepoRotateCmd(), newRepoExpireCmd())
	return cmd
}

func newRepoInitCmd() *cobra.Command {
	var o tuf.InitOptions
	var out *outputFormat
	exp := tuf.DefaultExpiry
	cmd := &cobra.Command{
		Use:   "init DIR",
		Short: "Create a new vendor repository with fresh signing keys",
		Long: `Create a new vendor repository in DIR (which must not exist or be empty).

Keys are Ed25519, one PKCS #8 PEM file per key under DIR/keys (mode 0600):
root-N.key for each root key, and targets.key, snapshot.key, timestamp.key and
bins.key for the online roles. Root keys sign only key changes: move them
offline after init and bring them back to rotate keys.

Ctrl-C stops it and removes what it made: DIR is left as it was.`,
		Example: `  bulwark repo init ./vendor --name example
  bulwark repo init ./vendor --root-keys 3 --root-threshold 2`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Expiry = exp
			r, err := tuf.InitContext(cmd.Context(), args[0], o, tuf.Options{})
			if err != nil {
				return err
			}
			defer r.Close()
			w := cmd.OutOrStdout()
			if out.Data() {
				return out.print(w, map[string]string{"name": r.Name(), "dir": args[0],
					"metadata": filepath.Join(args[0], tuf.MetadataDir), "targets": filepath.Join(args[0], tuf.TargetsDir),
					"keys": filepath.Join(args[0], tuf.KeysDir), "root": filepath.Join(args[0], tuf.MetadataDir, "1.root.json")})
			}
			fmt.Fprintf(w, "Created vendor repository %q in %s\n", r.Name(), args[0])
			fmt.Fprintf(w, "  metadata: %s (serve it)\n", filepath.Join(args[0], tuf.MetadataDir))
			fmt.Fprintf(w, "  targets:  %s (serve it)\n", filepath.Join(args[0], tuf.TargetsDir))
			fmt.Fprintf(w, "  keys:     %s (never serve it; move the root-*.key files offline)\n", filepath.Join(args[0], tuf.KeysDir))
			fmt.Fprintf(w, "Clients trust %s; publish with: bulwark repo publish %s UPDATE.yaml\n", filepath.Join(args[0], tuf.MetadataDir, "root.json"), args[0])
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Name, "name", "", "repository name (default \"bulwark\")")
	f.IntVar(&o.RootKeys, "root-keys", 1, "number of root keys")
	f.IntVar(&o.RootThreshold, "root-threshold", 1, "root signatures needed to change root")
	f.IntVar(&o.BinBits, "bin-bits", 10, "2^N hashed bins for targets (10 = 1024 bins, sized for ~100,000 updates)")
	durationFlag(f.DurationVar, (*time.Duration)(&exp.Root), "root-expiry", "how long a root version stays valid")
	durationFlag(f.DurationVar, (*time.Duration)(&exp.Targets), "targets-expiry", "how long targets metadata stays valid")
	durationFlag(f.DurationVar, (*time.Duration)(&exp.Bins), "bins-expiry", "how long each hashed bin stays valid")
	durationFlag(f.DurationVar, (*time.Duration)(&exp.Snapshot), "snapshot-expiry", "how long a snapshot stays valid")
	durationFlag(f.DurationVar, (*time.Duration)(&exp.Timestamp), "timestamp-expiry", "how long a timestamp stays valid (run bulwark repo refresh more often than this)")
	out = addOutputFlag(cmd)
	return cmd
}

func durationFlag(fn func(*time.Duration, string, time.Duration, string), p *time.Duration, name, usage string) {
	fn(p, name, *p, usage)
}

func newRepoPublishCmd() *cobra.Command {
	var revise bool
	var out *outputFormat
	cmd := &cobra.Command{
		Use:   "publish DIR UPDATE.yaml...",
		Short: "Validate updates and sign them into the repository",
		Long: `Validate each update's YAML (unknown fields, ids, severities, classifications,
payload files and references to other updates are all checked, and every
problem is reported with its file, line and field), copy its payload files
(named relative to the YAML file) into the repository and re-sign what changed.
Several files are signed in one commit: all of them become visible, or none.

A payload of installer type deb must be a real Debian binary package: its
package, version and architecture are read from the archive, recorded in the
signed update.json (agents judge from them whether the packages are current)
and shown; a file that is not a .deb is refused, and so is an applies_to deb
rule about the package that would still hold once the payload is installed.

Publishing identical content again changes nothing. Changed content for an id
that is already published needs --revise and records a new revision. A publish
that is interrupted at any point (Ctrl-C, a crash) leaves the previous
repository valid; run the same command again.`,
		Example: `  bulwark repo publish ./vendor BW-2026-0042.yaml
  bulwark repo publish ./vendor --revise BW-2026-0042.yaml`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := tuf.Open(args[0], tuf.Options{})
			if err != nil {
				return err
			}
			defer r.Close()
			// A large publish shows its progress on a terminal.
			bar := progress.New(cmd.ErrOrStderr(), progress.Items)
			if out.Data() || len(args) < 3 {
				bar = progress.NewWidth(io.Discard, progress.Items, func() int { return 0 })
			}
			count := len(args) - 1
			bar.Start("publishing", 0, count, int64(count))
			results, err := r.PublishMany(cmd.Context(), args[1:], tuf.PublishOptions{Revise: revise, Progress: func(n, count int, file string) {
				if n > count {
					bar.Item("signing", count, int64(count))
					return
				}
				bar.Item(file, n, int64(n-1))
			}})
			bar.Done()
			if err != nil {
				return err
			}
			for _, res := range results {
				if out.Data() {
					break
				}
				switch {
				case !res.Changed:
					fmt.Fprintf(cmd.OutOrStdout(), "%s: unchanged (revision %d)\n", res.ID, res.Revision)
					for _, p := range res.Repaired {
						fmt.Fprintf(cmd.OutOrStdout(), "  restored damaged target file of %s\n", p)
					}
				default:
					fmt.Fprintf(cmd.OutOrStdout(), "%s: published revision %d (%d targets)\n", res.ID, res.Revision, len(res.Targets))
				}
				for _, p := range res.Packages {
					fmt.Fprintf(cmd.OutOrStdout(), "  package %s %s %s\n", p.Package, p.Version, p.Architecture)
				}
			}
			if out.Data() {
				return out.print(cmd.OutOrStdout(), results)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&revise, "revise", false, "allow changed content for an update that is already published")
	out = addOutputFlag(cmd)
	return cmd
}

func newRepoVerifyCmd() *cobra.Command {
	var rootFile string
	var out *outputFormat
	cmd := &cobra.Command{
		Use: "verify DIR",
		Example: `  bulwark repo verify ./vendor
  bulwark repo verify ./vendor --trusted-root /media/usb/1.root.json -o json`,
		Short: "Verify a repository as a client would and report everything wrong",
		Long: `Verify every root version from the first (or from --trusted-root FILE), the timestamp,
snapshot, targets and every hashed bin, with signatures, thresholds, versions
and expiry checked; then hash every target file and check every update.json
against its payload targets, and every payload of installer type deb is a
Debian binary package matching its recorded package, version and
architecture. Needs no keys. Exits 1 when anything is wrong.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var root []byte
			if rootFile != "" {
				b, err := os.ReadFile(rootFile)
				if err != nil {
					return fmt.Errorf("--trusted-root: %w", err)
				}
				root = b
			}
			rep, err := tuf.Verify(cmd.Context(), args[0], root, time.Now())
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if out.Data() {
				if rep.Problems == nil {
					rep.Problems = []tuf.Problem{}
				}
				if err := out.print(w, rep); err != nil {
					return err
				}
			} else {
				for _, p := range rep.Problems {
					fmt.Fprintf(w, "FAIL %s\n", p)
				}
				if rep.OK() {
					fmt.Fprintf(w, "OK %s: root v%d, timestamp v%d (expires %s), snapshot v%d, %d bins, %d updates, %d targets (%s)\n",
						args[0], rep.RootVersion, rep.TimestampVersion, rep.TimestampExpires.Format(time.RFC3339), rep.SnapshotVersion,
						rep.Bins, rep.Updates, rep.Targets, progress.HumanBytes(rep.TargetBytes))
				} else {
					fmt.Fprintf(w, "%s: %d problem(s)\n", args[0], len(rep.Problems))
				}
			}
			if !rep.OK() {
				return exitCode(1)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&rootFile, "trusted-root", "", "trusted root.json to start from (default: the repository's metadata/1.root.json)")
	aliasFlag(cmd, "root", "trusted-root")
	out = addOutputFlag(cmd)
	return cmd
}

// updateView is how list and show present an update to scripts.
type updateView struct {
	*catalog.Update
	Targets []targetView `json:"targets"`
}

type targetView struct {
	Path   string `json:"path"`
	Length int64  `json:"length"`
	SHA256 string `json:"sha256"`
}

func viewOf(e *tuf.Entry) updateView {
	v := updateView{Update: e.Update}
	for _, tf := range append([]*metadata.TargetFiles{e.Target}, e.Payloads...) {
		if tf != nil {
			v.Targets = append(v.Targets, targetView{Path: tf.Path, Length: tf.Length, SHA256: hex.EncodeToString(tf.Hashes["sha256"])})
		}
	}
	return v
}

func newRepoListCmd() *cobra.Command {
	var out *outputFormat
	cmd := &cobra.Command{
		Use: "list DIR",
		Example: `  bulwark repo list ./vendor
  bulwark repo list ./vendor -o yaml`,
		Short: "List the updates in a repository",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			entries, err := withRepo(cmd.Context(), args[0], func(ctx context.Context, r *tuf.Repository) ([]*tuf.Entry, error) { return r.List(ctx) })
			if err != nil {
				return err
			}
			if out.Data() {
				views := make([]updateView, 0, len(entries))
				for _, e := range entries {
					views = append(views, viewOf(e))
				}
				return out.print(cmd.OutOrStdout(), views)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tREV\tSEVERITY\tCLASSIFICATION\tPRODUCT\tRELEASED\tTITLE")
			for _, e := range entries {
				u := e.Update
				title := u.Title
				if u.Withdrawn {
					title = "[withdrawn] " + title
				}
				fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\n", u.ID, u.Revision, u.Severity, u.Classification, u.Product, u.Released, title)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%d update(s)\n", len(entries))
			return nil
		},
	}
	out = addOutputFlag(cmd)
	return cmd
}

func newRepoShowCmd() *cobra.Command {
	var out *outputFormat
	cmd := &cobra.Command{
		Use:     "show DIR ID",
		Example: `  bulwark repo show ./vendor BW-2026-0042`,
		Short:   "Show one update's signed metadata and targets",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := withRepo(cmd.Context(), args[0], func(ctx context.Context, r *tuf.Repository) (*tuf.Entry, error) { return r.Show(ctx, args[1]) })
			if err != nil {
				return err
			}
			v := viewOf(e)
			if out.Data() {
				return out.print(cmd.OutOrStdout(), v)
			}
			printUpdate(cmd.OutOrStdout(), v)
			return nil
		},
	}
	out = addOutputFlag(cmd)
	return cmd
}

func printUpdate(w io.Writer, v updateView) {
	u := v.Update
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k, val string) {
		if val != "" {
			fmt.Fprintf(tw, "%s:\t%s\n", k, val)
		}
	}
	row("ID", u.ID)
	row("Revision", fmt.Sprint(u.Revision))
	if u.Withdrawn {
		row("Status", "withdrawn")
	}
	row("Title", u.Title)
	row("Advisory", u.Advisory)
	row("Product", u.Product)
	row("Classification", string(u.Classification))
	row("Severity", string(u.Severity))
	row("CVEs", strings.Join(u.CVEs, ", "))
	row("Released", u.Released)
	row("Supersedes", strings.Join(u.Supersedes, ", "))
	row("Requires", strings.Join(u.Requires, ", "))
	row("Reboot", string(u.Reboot))
	row("Installer", u.Installer.Type)
	row("Uninstallable", fmt.Sprint(u.Uninstallable))
	tw.Flush()
	if u.Description != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimSpace(u.Description))
	}
	fmt.Fprintln(w, "\nTargets:")
	for _, t := range v.Targets {
		fmt.Fprintf(w, "  %s  %s  sha256:%s\n", t.Path, progress.HumanBytes(t.Length), t.SHA256)
	}
}

func newRepoRefreshCmd() *cobra.Command {
	var out *outputFormat
	cmd := &cobra.Command{
		Use:   "refresh DIR",
		Short: "Re-sign the timestamp, and other online roles near expiry",
		Long: `Re-sign the timestamp, and the snapshot, targets and bins when less than half
of their validity is left. Run it from a timer more often than the timestamp
expiry (default 24h), for example hourly: clients refuse expired metadata, which
is what bounds a freeze attack.`,
		Example: `  # /etc/cron.d/bulwark-repo
  17 * * * * bulwark bulwark repo refresh /srv/vendor`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := withRepo(cmd.Context(), args[0], func(ctx context.Context, r *tuf.Repository) (*tuf.RefreshResult, error) { return r.Refresh(ctx) })
			if err != nil {
				return err
			}
			if out.Data() {
				return out.print(cmd.OutOrStdout(), res)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Re-signed %s; timestamp expires %s\n", strings.Join(res.Resigned, ", "), res.Expires.Format(time.RFC3339))
			for _, w := range res.Warnings {
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s\n", w)
			}
			return nil
		},
	}
	out = addOutputFlag(cmd)
	return cmd
}

func newRepoRotateCmd() *cobra.Command {
	var o tuf.RotateOptions
	var out *outputFormat
	cmd := &cobra.Command{
		Use:   "rotate DIR ROLE",
		Short: "Replace the signing keys of a role (root, targets, snapshot, timestamp, bins)",
		Long: `Replace the keys of ROLE with new ones and re-sign what depends on them.

Every role but bins is listed in root, so rotating it signs a new root version
with a threshold of the current root keys (kept in DIR/keys, or given with
--root-key when they are offline) and with every new key: clients that trust
the old root accept the new one. Rotating root can also change the number of
root keys and the threshold. Old key files are moved to DIR/keys/retired/.`,
		Example: `  bulwark repo rotate ./vendor timestamp
  bulwark repo rotate ./vendor root --keys 3 --threshold 2 --root-key /media/usb/root-1.key`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := withRepo(cmd.Context(), args[0], func(ctx context.Context, r *tuf.Repository) (*tuf.RotateResult, error) {
				return r.Rotate(ctx, args[1], o)
			})
			if err != nil {
				return err
			}
			if out.Data() {
				return out.print(cmd.OutOrStdout(), res)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "Rotated %s keys", res.Role)
			if res.RootVersion > 0 {
				fmt.Fprintf(w, "; signed root version %d", res.RootVersion)
			}
			fmt.Fprintln(w)
			for _, k := range res.NewKeys {
				fmt.Fprintf(w, "  new key:     %s\n", k)
			}
			for _, k := range res.Retired {
				fmt.Fprintf(w, "  retired key: %s\n", k)
			}
			return nil
		},
	}
	cmd.Flags().IntVar(&o.Keys, "keys", 0, "root only: number of new root keys (default: as now)")
	cmd.Flags().IntVar(&o.Threshold, "threshold", 0, "root only: new root threshold (default: as now)")
	cmd.Flags().StringArrayVar(&o.RootKeys, "root-key", nil, "a current root key file kept outside DIR/keys (repeatable)")
	out = addOutputFlag(cmd)
	return cmd
}

func newRepoExpireCmd() *cobra.Command {
	var out *outputFormat
	cmd := &cobra.Command{
		Use:     "expire DIR ID",
		Example: `  bulwark repo expire ./vendor BW-2026-0042`,
		Short:   "Withdraw an update: no client can install it any more",
		Long: `Withdraw an update. Its update.json is re-signed as withdrawn with a new
revision, and its payloads stop being signed targets, so no client can verify
or install them; site servers that sync see the withdrawal.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := withRepo(cmd.Context(), args[0], func(ctx context.Context, r *tuf.Repository) (*tuf.PublishResult, error) {
				return r.Expire(ctx, args[1])
			})
			if err != nil {
				return err
			}
			if out.Data() {
				return out.print(cmd.OutOrStdout(), res)
			}
			if !res.Changed {
				fmt.Fprintf(cmd.OutOrStdout(), "%s: already withdrawn (revision %d)\n", res.ID, res.Revision)
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "%s: withdrawn (revision %d)\n", res.ID, res.Revision)
			}
			return nil
		},
	}
	out = addOutputFlag(cmd)
	return cmd
}

// withRepo opens the repository at dir, runs fn and closes it.
func withRepo[T any](ctx context.Context, dir string, fn func(context.Context, *tuf.Repository) (T, error)) (T, error) {
	var zero T
	r, err := tuf.Open(dir, tuf.Options{})
	if err != nil {
		return zero, err
	}
	defer r.Close()
	return fn(ctx, r)
}
