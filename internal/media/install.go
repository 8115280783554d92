package media

import (
	"context"
	"encoding/hex"
	"fmt"
	"github.com/theupdateframework/go-tuf/v2/metadata"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/bulwarkhq/bulwark/internal/agent"
	"github.com/bulwarkhq/bulwark/internal/approval"
	"github.com/bulwarkhq/bulwark/internal/capread"
	"github.com/bulwarkhq/bulwark/internal/catalog"
	"github.com/bulwarkhq/bulwark/internal/facts"
	"github.com/bulwarkhq/bulwark/internal/fetch"
	"github.com/bulwarkhq/bulwark/internal/install"
	"github.com/bulwarkhq/bulwark/internal/tuf"
)

// InstallOptions say how a lone machine installs from media.
type InstallOptions struct {
	Media    string            // a media directory
	Pins     map[string]string // vendor roots pinned on the command line or in config
	Looked   string            // where pins were looked for, for the errors
	Site     string            // site root pin; "" installs every update on the media that applies
	Group    string            // with Site: whose approvals; "" when the media carry one group
	StateDir string            // the agent's state (its TUF cache gives rollback protection across media)
	Root     string            // "/" or a directory root
	Arch     string            // dpkg architecture; "" asks dpkg
	DpkgPath string
	Reboot   agent.Reboot
	Logger   *slog.Logger
	Now      time.Time
	MaxAge   time.Duration
	// Step is told when each update's copy or install starts; Progress
	// about the bytes of each payload copied.
	Step     func(key, phase string)
	Progress func(done, total int64)
}

// InstallResult is the pass's result and the report of the media.
type InstallResult struct {
	Cycle  *agent.CycleResult   `json:"cycle"`
	Report *Report              `json:"report"`
	States []agent.UpdateRecord `json:"states"`
}

// Install installs, on a machine with no server, every update on the media
// that applies to it, through the agent's own plan and one journaled pass
// with at most one reboot. Each vendor's metadata is verified from the
// pinned root (the agent's TUF cache under StateDir, so older media after
// newer are a rollback); with a site pin, the site's approvals for the
// group are used and must agree with the vendors' metadata (two roots),
// else every update on the media is treated as approved for install.
func Install(ctx context.Context, o InstallOptions) (*InstallResult, error) {
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	if o.MaxAge == 0 {
		o.MaxAge = DefaultMaxAge
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if len(o.Pins) == 0 {
		looked := ""
		if o.Looked != "" {
			looked = " (looked in: " + o.Looked + ")"
		}
		return nil, fmt.Errorf("no vendor root pinned%s: give --vendor NAME=sha256:… (the fingerprint the vendor publishes) or set vendor_pins in the agent's configuration", looked)
	}
	rep, err := Verify(ctx, o.Media, Trust{Vendors: o.Pins, Site: o.Site, Now: o.Now, MaxAge: o.MaxAge, Looked: o.Looked})
	if err != nil {
		return nil, err
	}
	res := &InstallResult{Report: rep}
	if err := rep.Err(); err != nil {
		return res, err
	}
	media, err := filepath.Abs(o.Media)
	if err != nil {
		return res, err
	}
	fr := freshness{now: o.Now, maxAge: o.MaxAge}
	vendors := map[string]*tuf.Client{}
	for _, mv := range rep.manifest.Vendors {
		t, err := fr.refTime(rep.vendors[mv.Name].tsExpires)
		if err != nil {
			return res, err
		}
		dir := filepath.Join(media, VendorsDir, mv.Name)
		c, err := tuf.NewClient(tuf.ClientConfig{TrustedRoot: rep.roots[mv.Name],
			MetadataURL: "file://" + filepath.Join(dir, tuf.MetadataDir), TargetsURL: "file://" + filepath.Join(dir, tuf.TargetsDir),
			CacheDir: filepath.Join(o.StateDir, "tuf", "vendor-"+mv.Name), Now: func() time.Time { return t }})
		if err != nil {
			return res, err
		}
		vendors[mv.Name] = c
	}
	src := agent.Sources{Vendors: vendors}
	if o.Site != "" && rep.manifest.Site != nil {
		g := o.Group
		if g == "" {
			if len(rep.manifest.Site.Groups) != 1 {
				return res, fmt.Errorf("the media carry approvals for groups %v: choose one with --group", rep.manifest.Site.Groups)
			}
			g = rep.manifest.Site.Groups[0]
		}
		doc, ok := rep.docs[g]
		if !ok {
			return res, fmt.Errorf("group %q: the media carry no verified approvals for it (groups: %v)", g, rep.manifest.Site.Groups)
		}
		src.Group, src.Approvals = g, doc
	} else {
		doc, err := approveAll(rep)
		if err != nil {
			return res, err
		}
		src.Approvals = doc
	}
	m, err := facts.New(facts.Config{Root: o.Root, Arch: o.Arch, DpkgPath: o.DpkgPath, Logger: o.Logger})
	if err != nil {
		return res, err
	}
	a, err := agent.Open(agent.Config{StateDir: o.StateDir, Root: o.Root, Logger: o.Logger, Now: func() time.Time { return o.Now },
		Policy:   agent.Policy{Mode: agent.ModeDownload},
		Handlers: agent.InstallHandlers(o.Root, o.StateDir, install.Options{Logger: o.Logger, DpkgPath: o.DpkgPath}),
		Reboot:   o.Reboot})
	if err != nil {
		return res, err
	}
	defer a.Close()
	a.OnStep(o.Step)
	cr, err := a.Cycle(ctx, src, agent.CycleOptions{AgentID: "media", Facts: m, Asked: map[string]bool{"*": true},
		Download: fetch.FileOptions{Progress: o.Progress}, Notify: func([]agent.UpdateRecord) {}})
	if err != nil {
		return res, err
	}
	res.Cycle, res.States = cr, a.Updates()
	return res, nil
}

// approveAll is the approvals of a machine with no site: every update the
// media carry, with its files as the vendor signed them.
func approveAll(rep *Report) (*approval.Document, error) {
	doc := &approval.Document{Group: "media"}
	for _, mv := range rep.manifest.Vendors {
		st := rep.vendors[mv.Name]
		for _, mu := range mv.Updates {
			tf := st.targets[tuf.UpdatePath(mu.ID)]
			ap := approval.Approval{Vendor: mv.Name, ID: mu.ID, Action: approval.ActionInstall, Rollout: 100,
				Targets: []approval.Target{{Path: tf.Path, Length: tf.Length, SHA256: hex.EncodeToString(tf.Hashes["sha256"])}}}
			b, err := readTarget(rep, mv.Name, tf)
			if err != nil {
				return nil, err
			}
			u, err := catalog.ParseJSON(b)
			if err != nil {
				return nil, err
			}
			for _, pl := range u.Payloads {
				ap.Targets = append(ap.Targets, approval.Target{Path: tuf.PayloadPath(mu.ID, pl.File), Length: pl.Length, SHA256: pl.SHA256})
			}
			doc.Updates = append(doc.Updates, ap)
		}
	}
	return doc, doc.Validate()
}

// readTarget reads a vendor target from the media, checked against its
// signed length and hash.
func readTarget(rep *Report, vendor string, tf *metadata.TargetFiles) ([]byte, error) {
	rel := pathJoin(VendorsDir, vendor, filepath.ToSlash(targetFile(tf)))
	b, err := capread.File(filepath.Join(rep.dir, filepath.FromSlash(rel)), tf.Length)
	if err != nil {
		return nil, errAt(rel, "cannot read: %v", err)
	}
	if err := tf.VerifyLengthHashes(b); err != nil {
		return nil, errAt(rel, "does not match its signed hash")
	}
	return b, nil
}
