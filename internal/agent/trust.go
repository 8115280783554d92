package agent

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/bulwarkhq/bulwark/internal/approval"
	"github.com/bulwarkhq/bulwark/internal/fetch"
	"github.com/bulwarkhq/bulwark/internal/tuf"
)

// Sources are the two kinds of repository an agent reads: its site's, whose
// first root it pinned at enrollment, and each vendor's. Every file is
// verified from its own root. A vendor repository is used only when its
// first root is the one the site root's signed vendor list names (or, for a
// vendor pinned on this agent with --vendor, the pinned one): the server
// hands out repository addresses and roots, but cannot choose which roots
// the agent trusts.
type Sources struct {
	Site    *tuf.Client
	Vendors map[string]*tuf.Client
	// Pins are vendor roots pinned out of band at enrollment: name →
	// fingerprint of the first root. A pin decides for its vendor.
	Pins  map[string]string
	Group string
	// Approvals, when Site is nil, is the group's approvals document that
	// the caller already verified (offline media on a machine with no
	// server: internal/media). The two-roots check still applies to it,
	// and the vendor clients are those the caller pinned.
	Approvals *approval.Document
}

// ErrUntrustedVendor means a vendor repository is not one the site root
// signs (or this agent pins), or its root is not the signed one.
var ErrUntrustedVendor = errors.New("untrusted vendor repository")

// trustedRoot returns the fingerprint of the first root this agent accepts
// for vendor name, from its pins and the site root's signed list (as the
// last site refresh verified it).
func (src Sources) trustedRoot(name string) (string, error) {
	if fp, ok := src.Pins[name]; ok {
		return fp, nil
	}
	if src.Site == nil {
		// Offline media: the caller pinned and verified every vendor root.
		if vc, ok := src.Vendors[name]; ok {
			return vc.FirstRootFingerprint(), nil
		}
		return "", fmt.Errorf("%w: vendor %q is not among the pinned vendors", ErrUntrustedVendor, name)
	}
	list, err := src.Site.TrustedVendors()
	if err != nil {
		return "", fmt.Errorf("site root: %w", err)
	}
	fp, ok := list[name]
	if !ok {
		return "", fmt.Errorf("%w: vendor %q is not in the site root's signed vendor list and not pinned on this agent", ErrUntrustedVendor, name)
	}
	return fp, nil
}

// vendor returns the client of a vendor repository this agent trusts.
func (src Sources) vendor(name string) (*tuf.Client, error) {
	want, err := src.trustedRoot(name)
	if err != nil {
		return nil, err
	}
	vc, ok := src.Vendors[name]
	if !ok {
		return nil, fmt.Errorf("%w: vendor %q is signed by the site, but the server has not given this agent its repository", ErrUntrustedVendor, name)
	}
	if got := vc.FirstRootFingerprint(); got != want {
		return nil, fmt.Errorf("%w: vendor %q: the root this agent was given (%s) is not the signed one (%s); a vendor root changes only by a rotation signed with the old root", ErrUntrustedVendor, name, got, want)
	}
	return vc, nil
}

// ErrDisagree means the site and a vendor repository, each verified from its
// own root, say different things about an update's files: one of them is
// compromised or broken, and nothing of that update is installed.
var ErrDisagree = errors.New("site approvals and vendor metadata disagree")

// verified is an approved update whose files both roots agree on.
type verified struct {
	Candidate
	info   *tuf.UpdateInfo
	vendor *tuf.Client
}

// gather refreshes the site and vendor metadata and returns every approved
// update that both roots agree on. An update they disagree on, or whose
// vendor this agent does not trust, is recorded as failed with the reason
// and left out.
func (a *Agent) gather(ctx context.Context, src Sources) ([]verified, error) {
	doc := src.Approvals
	if src.Site != nil || doc == nil {
		if err := src.Site.Refresh(ctx); err != nil {
			return nil, fmt.Errorf("site repository: %w", err)
		}
		var err error
		doc, _, err = src.Site.Approvals(ctx, src.Group)
		if errors.Is(err, tuf.ErrUnknownUpdate) {
			return nil, nil // the site approved nothing for this group yet
		}
		if err != nil {
			return nil, fmt.Errorf("site repository: %w", err)
		}
	}
	// Each vendor fails alone: one that is untrusted or cannot be
	// refreshed fails its own updates and no other vendor's.
	refreshed := map[string]error{}
	var out []verified
	for _, ap := range doc.Updates {
		key := ap.Vendor + "/" + ap.ID
		vc, err := src.vendor(ap.Vendor)
		if err == nil {
			var done bool
			if err, done = refreshed[ap.Vendor]; !done {
				if err = vc.Refresh(ctx); err != nil {
					err = fmt.Errorf("vendor repository %s: %w", ap.Vendor, err)
				}
				refreshed[ap.Vendor] = err
			}
		}
		if err != nil {
			a.log.Warn("refusing an approved update", "update", key, "err", err)
			if serr := a.store.set(key, StateFailed, err.Error(), nil); serr != nil {
				return nil, serr
			}
			continue
		}
		if ap.Action == approval.ActionDecline {
			if err := a.store.set(key, StateDeclined, "declined by the site", nil); err != nil {
				return nil, err
			}
			continue
		}
		info, err := vc.Update(ctx, ap.ID)
		if err == nil {
			err = agree(ctx, vc, info, ap)
		}
		if err != nil {
			a.log.Warn("refusing an approved update", "update", key, "err", err)
			if serr := a.store.set(key, StateFailed, err.Error(), nil); serr != nil {
				return nil, serr
			}
			continue
		}
		out = append(out, verified{Candidate: Candidate{Vendor: ap.Vendor, Approval: ap, Update: info.Update}, info: info, vendor: vc})
	}
	return out, nil
}

// agree checks the two-roots rule for one update: every file the site lists
// must be a vendor target with the same length and hash, and every file the
// vendor's update.json names must be listed by the site.
func agree(ctx context.Context, vc *tuf.Client, info *tuf.UpdateInfo, ap approval.Approval) error {
	site := map[string]approval.Target{}
	for _, t := range ap.Targets {
		site[t.Path] = t
	}
	check := func(tf *metadata.TargetFiles) error {
		t, ok := site[tf.Path]
		if !ok {
			return fmt.Errorf("%w: the vendor signs %s, the site does not list it", ErrDisagree, tf.Path)
		}
		delete(site, tf.Path)
		if t.Length != tf.Length || t.SHA256 != hex.EncodeToString(tf.Hashes["sha256"]) {
			return fmt.Errorf("%w: %s is %d bytes sha256 %s for the site, %d bytes sha256 %x for the vendor",
				ErrDisagree, tf.Path, t.Length, t.SHA256, tf.Length, tf.Hashes["sha256"])
		}
		return nil
	}
	if err := check(info.Target); err != nil {
		return err
	}
	if !info.Update.Withdrawn {
		for _, p := range info.Update.Payloads {
			tf, err := vc.Payload(ctx, info, p.File)
			if err != nil {
				return err
			}
			if err := check(tf); err != nil {
				return err
			}
		}
	}
	for p := range site {
		return fmt.Errorf("%w: the site lists %s, which the vendor does not sign for this update", ErrDisagree, p)
	}
	return nil
}

// download fetches the payloads of one verified update into the download
// directory, each verified against its signed length and hash while it is
// written. A file that fails verification is deleted and fetched once more;
// a second failure fails the update.
func (a *Agent) download(ctx context.Context, v verified, opts fetch.FileOptions) (map[string]string, error) {
	files := map[string]string{}
	dir := filepath.Join(a.cfg.StateDir, "downloads", v.Vendor, v.Update.ID)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	a.step(v.Key(), "download")
	for _, p := range v.Update.Payloads {
		tf, err := v.vendor.Payload(ctx, v.info, p.File)
		if err != nil {
			return nil, err
		}
		dst := filepath.Join(dir, hex.EncodeToString(tf.Hashes["sha256"])+"."+p.File)
		err = v.vendor.Download(ctx, tf, dst, opts)
		if errors.Is(err, fetch.ErrHashMismatch) || errors.Is(err, fetch.ErrLengthMismatch) || errors.Is(err, fetch.ErrTooLarge) {
			a.log.Warn("payload failed verification; deleted, fetching again", "update", v.Key(), "file", p.File, "err", err)
			err = v.vendor.Download(ctx, tf, dst, opts)
		}
		if err != nil {
			return nil, fmt.Errorf("download %s: %w", p.File, err)
		}
		files[p.File] = dst
	}
	return files, nil
}
