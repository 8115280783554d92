//go:build !agentonly

package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/bulwarkhq/bulwark/internal/agent"
	"github.com/bulwarkhq/bulwark/internal/capread"
	"github.com/bulwarkhq/bulwark/internal/media"
	"github.com/bulwarkhq/bulwark/internal/progress"
	"github.com/bulwarkhq/bulwark/internal/server"
	"github.com/bulwarkhq/bulwark/internal/tuf"
)

func newMediaCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "media",
		Short: "Offline media: updates on a disc for disconnected networks and lone machines",
		Long: `Offline media carry vendors' signed TUF metadata, chosen payloads, a site's
signed approvals, the lockdown rules, a manifest and a README, as a directory
and optionally an ISO 9660 image. The same inputs give byte-identical media.

Nothing on media is trusted because it is on them: every file is verified
from vendor roots the reader already trusts (a server's pinned roots, an
agent's, or --vendor NAME=sha256:… given after checking with the vendor), and
media never add a vendor root.

  bulwark media create ./media --data-dir ./bulwark-data --group web --iso
  bulwark media verify ./media.iso --vendor debian=sha256:…
  bulwark media import ./media.iso --data-dir /var/lib/bulwark
  bulwark agent install --from-media ./media.iso --vendor debian=sha256:…

See docs/MEDIA.md.`,
	}
	cmd.AddCommand(newMediaCreateCmd(), newMediaVerifyCmd(), newMediaImportCmd())
	return cmd
}

func newMediaCreateCmd() *cobra.Command {
	var dataDir string
	var repos []string
	var sel media.Selection
	var iso bool
	var out *outputFormat
	cmd := &cobra.Command{
		Use: "create OUT [--iso]",
		Example: `  bulwark media create ./media --data-dir /var/lib/bulwark-server --group web --iso
  bulwark media create ./media --repo example=/srv/vendor --security --since 2026-11-01`,
		Short: "Write media to the new directory OUT (and OUT.iso with --iso)",
		Long: `Write media to the new directory OUT from a server's data directory (its
synced vendor repositories and its site repository, for --group) and/or vendor
repository directories (--repo NAME=DIR). Choose the updates with --group
(approved for install or uninstall in that computer group), --security
(classification security or critical), --product, --classification,
--severity, --vendor-name, or --all; --since keeps updates released on or
after a date. Filters combine (all must hold).

Every file is written with the time SOURCE_DATE_EPOCH (default 2000-01-01)
in sorted order, so the same inputs give byte-identical media and images.
--iso also writes OUT.iso (ISO 9660, Rock Ridge and Joliet) with xorriso.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o := media.CreateOptions{Out: args[0], Select: sel}
			if dataDir != "" {
				vs, site, err := serverSources(dataDir)
				if err != nil {
					return err
				}
				o.Vendors, o.Site = vs, site
			}
			for _, r := range repos {
				name, dir, ok := strings.Cut(r, "=")
				if !ok || name == "" || dir == "" {
					return fmt.Errorf("--repo %q: want NAME=DIR, a vendor repository made with `bulwark repo init`", r)
				}
				root, err := capread.File(filepath.Join(dir, tuf.MetadataDir, "1.root.json"), 512<<10)
				if err != nil {
					return fmt.Errorf("--repo %s: %w (not a vendor repository?)", name, err)
				}
				o.Vendors = append(o.Vendors, media.Source{Name: name, Dir: dir, Root: root})
			}
			date, err := sourceDate()
			if err != nil {
				return err
			}
			o.Date = date
			isoPath := ""
			if iso {
				isoPath = strings.TrimSuffix(filepath.Clean(args[0]), "/") + ".iso"
				o.ISO = isoPath
			}
			m, err := media.Create(cmd.Context(), o)
			if err != nil {
				return err
			}
			if out.Data() {
				return out.print(cmd.OutOrStdout(), map[string]any{"dir": args[0], "iso": isoPath, "manifest": m})
			}
			w := cmd.OutOrStdout()
			var bytes int64
			for _, f := range m.Files {
				bytes += f.Length
			}
			for _, v := range m.Vendors {
				fmt.Fprintf(w, "vendor %s (root %s): %d updates\n", v.Name, v.RootFingerprint, len(v.Updates))
			}
			if m.Site != nil {
				fmt.Fprintf(w, "site approvals (root %s): %s\n", m.Site.RootFingerprint, strings.Join(m.Site.Groups, ", "))
			}
			fmt.Fprintf(w, "wrote %s: %d files, %d bytes\n", args[0], len(m.Files)+1, bytes)
			if isoPath != "" {
				fmt.Fprintf(w, "wrote %s\n", isoPath)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dataDir, "data-dir", "", "a server's data directory: its synced vendor repositories and its site repository")
	f.StringArrayVar(&repos, "repo", nil, "vendor repository NAME=DIR to take updates from (repeatable)")
	f.StringArrayVar(&sel.Groups, "group", nil, "updates approved for this computer group, with the site's signed approvals (repeatable)")
	f.StringArrayVar(&sel.Vendors, "vendor-name", nil, "only this vendor's updates (repeatable)")
	f.StringArrayVar(&sel.Products, "product", nil, "only this product (repeatable)")
	f.StringArrayVar(&sel.Classifications, "classification", nil, "only this classification (repeatable)")
	f.StringArrayVar(&sel.Severities, "severity", nil, "only this severity (repeatable)")
	f.BoolVar(&sel.Security, "security", false, "only security updates (classification security or critical)")
	f.BoolVar(&sel.All, "all", false, "every update (that the other filters keep)")
	f.StringVar(&sel.Since, "since", "", "only updates released on or after this date (YYYY-MM-DD)")
	f.BoolVar(&iso, "iso", false, "also write OUT.iso, an ISO 9660 image (needs xorriso)")
	out = addOutputFlag(cmd)
	return cmd
}

// sourceDate is SOURCE_DATE_EPOCH, or media.DefaultDate.
func sourceDate() (time.Time, error) {
	v := os.Getenv("SOURCE_DATE_EPOCH")
	if v == "" {
		return media.DefaultDate, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH %q: want seconds since 1970", v)
	}
	return time.Unix(n, 0).UTC(), nil
}

// serverSources are the synced vendor repositories of a server's data
// directory, each with the root the server pinned, and its site repository.
func serverSources(dataDir string) ([]media.Source, *media.Source, error) {
	ents, err := os.ReadDir(filepath.Join(dataDir, "roots"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, nil, err
	}
	var vs []media.Source
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || strings.HasPrefix(name, ".") {
			continue
		}
		root, err := capread.File(filepath.Join(dataDir, "roots", e.Name()), 512<<10)
		if err != nil {
			return nil, nil, err
		}
		dir := filepath.Join(dataDir, "mirrors", name)
		if _, err := os.Stat(filepath.Join(dir, tuf.MetadataDir, "timestamp.json")); err != nil {
			continue // pinned, never synced
		}
		vs = append(vs, media.Source{Name: name, Dir: dir, Root: root})
	}
	siteDir := filepath.Join(dataDir, "site")
	root, err := capread.File(filepath.Join(siteDir, tuf.MetadataDir, "1.root.json"), 512<<10)
	if err != nil {
		return nil, nil, fmt.Errorf("data dir %s: no site repository: %w", dataDir, err)
	}
	return vs, &media.Source{Name: "site", Dir: siteDir, Root: root}, nil
}

// trustFlags are the ways a reader of media says what it trusts.
type trustFlags struct {
	vendors     []string
	site        string
	dataDir     string
	state       string
	agentConfig string
	maxAge      time.Duration
}

func (t *trustFlags) add(cmd *cobra.Command, withServer bool) {
	f := cmd.Flags()
	f.StringArrayVar(&t.vendors, "vendor", nil, "pin a vendor root: NAME=sha256:… (the fingerprint the vendor publishes; repeatable)")
	f.StringVar(&t.site, "site", "", "pin the site root whose approvals to use: sha256:…")
	if withServer {
		f.StringVar(&t.dataDir, "data-dir", "", "trust the vendor roots this server's data directory pinned (and refuse media older than what it serves)")
	}
	f.StringVar(&t.state, "state-dir", "", "trust the vendor roots of the agent enrolled with this state directory")
	aliasFlag(cmd, "state", "state-dir")
	f.StringVar(&t.agentConfig, "agent-config", "", "trust the vendor_pins of this agent configuration file (e.g. "+agent.DefaultConfigPath+")")
	f.DurationVar(&t.maxAge, "max-age", media.DefaultMaxAge, "refuse media whose timestamp expired longer ago than this")
}

// trust gathers the pins: the server's, the agent's configuration's and
// enrollment's, then the command line's; two different pins for one vendor
// are refused.
func (t *trustFlags) trust() (media.Trust, error) {
	tr := media.Trust{MaxAge: t.maxAge}
	var ps tuf.PinSet
	var looked []string
	if t.dataDir != "" {
		pins, known, err := media.ServerPins(t.dataDir)
		if err != nil {
			return tr, err
		}
		tr.Known = known
		from := "the server's data directory " + t.dataDir
		looked = append(looked, from)
		if err := ps.Add(from, pins); err != nil {
			return tr, err
		}
	}
	if t.agentConfig != "" {
		s, err := agent.LoadConfig(t.agentConfig)
		if err != nil {
			return tr, err
		}
		from := "the agent's configuration " + t.agentConfig + " (vendor_pins)"
		looked = append(looked, from)
		if err := ps.Add(from, s.VendorPins); err != nil {
			return tr, err
		}
	}
	if t.state != "" {
		e, err := agent.LoadEnrollment(t.state)
		if err != nil {
			return tr, fmt.Errorf("--state-dir %s: %w", t.state, err)
		}
		// Only the pins the admin gave at enrollment: the vendor roots the
		// server handed out (e.Vendors) are the server's word, which a
		// compromised server chooses, and media must not turn them into
		// trust the agent's own cycle would refuse.
		from := "the agent's enrollment in " + t.state
		looked = append(looked, from)
		if err := ps.Add(from, e.VendorPins); err != nil {
			return tr, err
		}
	}
	pins, err := tuf.ParseVendorPins("vendor", t.vendors)
	if err != nil {
		return tr, err
	}
	looked = append(looked, "--vendor")
	if err := ps.Add("--vendor", pins); err != nil {
		return tr, err
	}
	tr.Vendors, tr.Looked = ps.Pins, strings.Join(looked, ", ")
	if tr.Vendors == nil {
		tr.Vendors = map[string]string{}
	}
	if t.site != "" {
		if tr.Site, err = tuf.ParseRootFingerprint(t.site); err != nil {
			return tr, fmt.Errorf("--site: %w", err)
		}
	}
	return tr, nil
}

func newMediaVerifyCmd() *cobra.Command {
	var tf trustFlags
	var out *outputFormat
	cmd := &cobra.Command{
		Use:     "verify DIR|ISO",
		Example: `  bulwark media verify ./media.iso --vendor example=sha256:…`,
		Short:   "Verify media offline against pinned roots; exit status 1 on any problem",
		Long: `Verify media offline: the manifest and every file's length and SHA-256; each
vendor's root against the pinned one (a vendor with no pin, or another root,
is refused); the root chain, timestamp, snapshot, targets and bins; every
update and payload against the signed metadata; the site's approvals when
--site pins its root; and the lockdown rules against this bulwark's built-in
ones. The report names every problem and the file it is in.

Pins come from --vendor NAME=sha256:…, from a server's --data-dir (whose
served versions also make older media a rollback), from an agent
configuration's vendor_pins (--agent-config), or from the vendor pins an
enrolled agent's --state-dir was given at enrollment (never the vendor roots the
server handed out); two different pins for one vendor are refused.

DIR|ISO may also be a tar archive of a media directory.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			tr, err := tf.trust()
			if err != nil {
				return err
			}
			dir, closeFn, err := media.Open(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			defer closeFn()
			rep, err := media.Verify(cmd.Context(), dir, tr)
			if err != nil {
				return err
			}
			rep.Media = args[0]
			if out.Data() {
				if err := out.print(cmd.OutOrStdout(), rep); err != nil {
					return err
				}
			} else {
				printReport(cmd.OutOrStdout(), rep)
			}
			if !rep.OK() {
				return exitCode(1)
			}
			return nil
		},
	}
	tf.add(cmd, true)
	out = addOutputFlag(cmd)
	return cmd
}

func printReport(w io.Writer, rep *media.Report) {
	for _, v := range rep.Vendors {
		trust := "NOT TRUSTED"
		if v.Trusted {
			trust = "pinned"
		}
		fmt.Fprintf(w, "vendor %s: root %s (%s), root v%d, timestamp v%d: %d updates, %d payloads, %d bytes verified\n",
			v.Name, v.RootFingerprint, trust, v.RootVersion, v.TimestampVersion, v.Updates, v.Payloads, v.Bytes)
	}
	if s := rep.Site; s != nil {
		state := "not used"
		if s.Verified {
			state = "verified"
		}
		fmt.Fprintf(w, "site approvals: root %s, groups %s: %s\n", s.RootFingerprint, strings.Join(s.Groups, ", "), state)
	}
	for _, n := range rep.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	for _, p := range rep.Problems {
		fmt.Fprintf(w, "PROBLEM %s: %s\n", p.Where, p.What)
	}
	if rep.OK() {
		fmt.Fprintf(w, "OK: %s verified (%d files, %d bytes)\n", rep.Media, rep.Files, rep.Bytes)
	} else {
		fmt.Fprintf(w, "REFUSED: %s has %d problem(s)\n", rep.Media, len(rep.Problems))
	}
}

func newMediaImportCmd() *cobra.Command {
	var dataDir, tokenFile, configPath string
	var vendors []string
	var maxAge time.Duration
	var out *outputFormat
	cmd := &cobra.Command{
		Use: "import DIR|ISO --data-dir DIR | --config FILE",
		Example: `  bulwark media import /media/cdrom --data-dir /var/lib/bulwark-server
  bulwark media import /media/cdrom/disc.iso --config /etc/bulwark/server.yaml`,
		Short: "Import media into a disconnected server's synced vendor repositories",
		Long: `Import media into a server's data directory the way a sync does (tuf.Mirror,
reading the media instead of an upstream): every file verified from the
vendor root the server already pinned, older metadata than it serves refused,
new files written under names nothing refers to yet and the timestamp
switched last, so a kill at any moment leaves what the server served before,
and importing again finishes the work. Media naming a vendor the server does
not trust are refused.

The vendor roots trusted are the ones the server already pinned (its data
directory's roots/), the upstream vendors the server last started with
(recorded at each start in its data directory's ` + server.UpstreamPinsFile + `,
whether they came from its configuration file, --upstream-vendor flags or
BULWARK_* variables), the upstream vendors' root_fingerprint in the server's
configuration (--config, the file ` + "`bulwark server --config`" + ` reads, and
the BULWARK_* variables such as BULWARK_UPSTREAM_VENDOR), and --vendor
NAME=sha256:…; two different pins for one vendor are refused. So the first
import into a disconnected server that has been started once with its
vendors needs no --vendor.

Approvals on the media are imported only when they were signed by this
server's own site root (a standby of the site that made them, its site
repository restored from a backup): with --token-file, the running server
syncs, then sets each group's approvals through its API, re-signing them with
targets it verified itself. Another site's approvals are never imported.

The server serves the new content at once and lists the new updates after its
next sync (` + "`bulwark admin sync run`" + ` or a restart). A disconnected server is
configured with an upstream that has no url, only its vendors and their
root_fingerprint (see docs/MEDIA.md).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var ps tuf.PinSet
			var looked []string
			if configPath != "" {
				fc, err := loadServerConfig(configPath, os.Environ, nil)
				if err != nil {
					return err
				}
				if dataDir == "" {
					dataDir = fc.DataDir
				}
				uv := map[string]string{}
				if fc.Upstream != nil {
					for _, v := range fc.Upstream.Vendors {
						if _, dup := uv[v.Name]; dup {
							return fmt.Errorf("config %s: upstream vendor %s listed twice", configPath, v.Name)
						}
						uv[v.Name] = v.RootFingerprint
					}
				}
				from := "the server's configuration " + configPath + " (upstream.vendors)"
				pins, err := tuf.CheckVendorPins(from, uv)
				if err != nil {
					return err
				}
				looked = append(looked, from)
				if err := ps.Add(from, pins); err != nil {
					return err
				}
			}
			if dataDir == "" {
				return errors.New("no data directory: give --data-dir DIR (the server's data directory) or --config FILE (the server's configuration, whose data_dir is used)")
			}
			// The pins the server was last started with, however it was
			// configured (a server started with flags only has no file
			// to give with --config).
			started := filepath.Join(dataDir, server.UpstreamPinsFile)
			startPins, err := tuf.ReadPinsFile(started)
			if err != nil {
				return err
			}
			from := "the upstream vendors the server last started with (" + started + ")"
			looked = append(looked, from)
			if err := ps.Add(from, startPins); err != nil {
				return err
			}
			pins, err := tuf.ParseVendorPins("vendor", vendors)
			if err != nil {
				return err
			}
			looked = append(looked, "--vendor")
			if err := ps.Add("--vendor", pins); err != nil {
				return err
			}
			dir, closeFn, err := media.Open(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			defer closeFn()
			res, err := media.Import(cmd.Context(), media.ImportOptions{Media: dir, DataDir: dataDir, Pins: ps.Pins, PinsFrom: ps.From, Looked: looked, MaxAge: maxAge})
			if res != nil && res.Report != nil {
				res.Report.Media = args[0]
			}
			var re *media.RefusedError
			if errors.As(err, &re) {
				printReport(cmd.ErrOrStderr(), re.Report)
				return exitCode(1)
			}
			if err != nil {
				return err
			}
			if out.Data() {
				return out.print(cmd.OutOrStdout(), res)
			}
			w := cmd.OutOrStdout()
			for _, v := range res.Report.Manifest().Vendors {
				r := res.Vendors[v.Name]
				if !r.Changed {
					fmt.Fprintf(w, "vendor %s: already at timestamp v%d, nothing new\n", v.Name, r.TimestampVersion)
					continue
				}
				fmt.Fprintf(w, "vendor %s: imported timestamp v%d: %d update.json and %d payloads (%d bytes) copied\n",
					v.Name, r.TimestampVersion, r.UpdatesFetched, r.PayloadsFetched, r.BytesFetched)
			}
			if s := res.Report.Manifest().Site; s != nil {
				return importApprovals(cmd, dir, dataDir, tokenFile, s)
			}
			fmt.Fprintln(w, "done: run `bulwark admin sync run` (or restart the server) to list the new updates")
			return nil
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", "", "the server's data directory (default: the data_dir of --config)")
	cmd.Flags().StringVar(&configPath, "config", "", "the server's YAML configuration: its data_dir and its upstream vendors' root_fingerprint pins")
	cmd.Flags().StringVar(&tokenFile, "token-file", "", "an admin token of the running server: import the media's approvals when they are this server's site's")
	cmd.Flags().StringArrayVar(&vendors, "vendor", nil, "pin a vendor root the server has not pinned yet: NAME=sha256:… (repeatable)")
	cmd.Flags().DurationVar(&maxAge, "max-age", media.DefaultMaxAge, "refuse media whose timestamp expired longer ago than this")
	out = addOutputFlag(cmd)
	return cmd
}

// installFromMedia is `bulwark agent install --from-media`: a lone machine
// with no server installs from media in one pass.
type installFromMedia struct {
	media  string
	trust  trustFlags
	group  string
	config string
	root   string
	arch   string
}

func (m *installFromMedia) addFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&m.media, "from-media", "", "install from offline media (a directory or .iso) on a machine with no server")
	f.StringArrayVar(&m.trust.vendors, "vendor", nil, "with --from-media: pin a vendor root NAME=sha256:… (repeatable)")
	f.StringVar(&m.trust.site, "site", "", "with --from-media: pin the site root sha256:… and use its approvals for --group")
	f.StringVar(&m.group, "group", "", "with --from-media and --site: the computer group whose approvals to follow")
	f.StringVar(&m.config, "config", agent.DefaultConfigPath, "with --from-media: agent configuration (state_dir, root, reboot_command, vendor_pins), used when present")
	f.StringVar(&m.trust.state, "state-dir", "", "with --from-media: the agent's state directory (default from --config, else /var/lib/bulwark)")
	aliasFlag(cmd, "state", "state-dir")
	f.StringVar(&m.root, "root", "", "with --from-media: root directory to install into (default from --config, else /)")
	f.StringVar(&m.arch, "arch", "", "with --from-media: dpkg architecture of --root (default: ask dpkg)")
	f.DurationVar(&m.trust.maxAge, "max-age", media.DefaultMaxAge, "with --from-media: refuse media whose timestamp expired longer ago than this")
}

func (m *installFromMedia) run(cmd *cobra.Command) error {
	settings, err := agent.LoadConfig(m.config)
	if errors.Is(err, os.ErrNotExist) {
		settings, err = agent.FileConfig{}.Check()
	} else if err == nil {
		// The configuration's vendor_pins are trusted like --vendor.
		m.trust.agentConfig = m.config
	}
	if err != nil {
		return err
	}
	if m.trust.state == "" {
		m.trust.state = settings.StateDir
	}
	root := settings.Root
	if m.root != "" {
		root = m.root
	}
	if root, err = filepath.Abs(root); err != nil {
		return err
	}
	pinState := m.trust.state
	if _, err := os.Stat(filepath.Join(pinState, "enrollment.json")); err != nil {
		m.trust.state = "" // not enrolled: pins come from the command line only
	}
	tr, err := m.trust.trust()
	if err != nil {
		return err
	}
	dir, closeFn, err := media.Open(cmd.Context(), m.media)
	if err != nil {
		return err
	}
	defer closeFn()
	w := cmd.OutOrStdout()
	bar := progress.New(cmd.ErrOrStderr(), progress.Bytes)
	cur, started := "", ""
	res, err := media.Install(cmd.Context(), media.InstallOptions{Media: dir, Pins: tr.Vendors, Looked: tr.Looked, Site: tr.Site, Group: m.group,
		StateDir: pinState, Root: root, Arch: m.arch, MaxAge: tr.MaxAge,
		Reboot: agent.Reboot{Command: settings.RebootCommand, BootIDPath: settings.BootIDPath},
		Step: func(key, phase string) {
			cur = key
			if phase == "install" {
				bar.Done()
				fmt.Fprintf(w, "installing %s\n", key)
			}
		},
		Progress: func(done, total int64) {
			if cur != started {
				started = cur
				bar.Start(cur, 0, 0, total)
			}
			bar.Set(done, total)
		},
	})
	bar.Done()
	var re *media.RefusedError
	if errors.As(err, &re) {
		re.Report.Media = m.media
		printReport(cmd.ErrOrStderr(), re.Report)
		return exitCode(1)
	}
	if err != nil {
		return err
	}
	pass := res.Cycle.Pass
	fmt.Fprintf(w, "media %s verified: ", m.media)
	for i, v := range res.Report.Vendors {
		if i > 0 {
			fmt.Fprint(w, ", ")
		}
		fmt.Fprintf(w, "%s (%d updates)", v.Name, v.Updates)
	}
	fmt.Fprintln(w)
	for _, s := range res.States {
		fmt.Fprintf(w, "  %-28s %s", s.Key, s.State)
		if s.Reason != "" {
			fmt.Fprintf(w, " (%s)", s.Reason)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "summary: %d installed, %d failed", len(pass.Installed), len(pass.Failed))
	if pass.Rebooted {
		fmt.Fprint(w, "; rebooting once to finish")
	}
	fmt.Fprintln(w)
	// The media's lockdown rules verified equal to this bulwark's own.
	fmt.Fprintf(w, "next: bulwark lockdown apply --profile end-user --root %s\n", root)
	if len(pass.Failed) > 0 {
		return exitCode(1)
	}
	return nil
}

// importApprovals sets, through the running server's API, the approvals
// the media carry, when they were signed by this server's own site root.
func importApprovals(cmd *cobra.Command, dir, dataDir, tokenFile string, s *media.Site) error {
	w := cmd.OutOrStdout()
	own, err := capread.File(filepath.Join(dataDir, "site", tuf.MetadataDir, "1.root.json"), 512<<10)
	if err != nil {
		return fmt.Errorf("data dir %s: no site repository: %w", dataDir, err)
	}
	if fp := tuf.RootFingerprint(own); fp != s.RootFingerprint {
		fmt.Fprintf(w, "site approvals for %s not imported: signed by site root %s, this server's is %s (approve here with `bulwark admin approve`)\n", strings.Join(s.Groups, ", "), s.RootFingerprint, fp)
		fmt.Fprintln(w, "done: run `bulwark admin sync run` (or restart the server) to list the new updates")
		return nil
	}
	if tokenFile == "" {
		fmt.Fprintf(w, "site approvals for %s are this server's site's: give --token-file (an admin token) to import them\n", strings.Join(s.Groups, ", "))
		return nil
	}
	pins, _, err := media.ServerPins(dataDir)
	if err != nil {
		return err
	}
	rep, err := media.Verify(cmd.Context(), dir, media.Trust{Vendors: pins, Site: s.RootFingerprint, LengthOnly: true})
	if err != nil {
		return err
	}
	if err := rep.Err(); err != nil {
		return err
	}
	o := &adminOptions{dataDir: dataDir, tokenFile: tokenFile, wait: time.Minute}
	c, err := o.client(cmd.InOrStdin(), cmd.ErrOrStderr())
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	if err := c.do(ctx, "POST", "/api/v1/sync?wait=true", server.SyncRequest{}, nil); err != nil {
		return fmt.Errorf("sync after the import: %w", err)
	}
	for _, g := range rep.Groups() {
		var ae *apiError
		if err := c.do(ctx, "POST", "/api/v1/groups", map[string]string{"name": g}, nil); err != nil && !(errors.As(err, &ae) && ae.Status == http.StatusConflict) {
			return fmt.Errorf("group %s: %w", g, err)
		}
		doc := rep.Approvals(g)
		for _, a := range doc.Updates {
			p, err := approvalPath(g, a.Vendor+"/"+a.ID)
			if err != nil {
				return err
			}
			req := server.ApprovalRequest{Action: a.Action, Deadline: a.Deadline, Rollout: a.Rollout}
			if err := c.do(ctx, "PUT", p, req, nil); err != nil {
				return fmt.Errorf("group %s: %s %s/%s: %w", g, a.Action, a.Vendor, a.ID, err)
			}
		}
		fmt.Fprintf(w, "group %s: %d approvals imported and re-signed by this server\n", g, len(doc.Updates))
	}
	return nil
}
