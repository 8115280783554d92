package tuf

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/bulwarkhq/bulwark/internal/approval"
)

// SiteRepository is an update server's own TUF repository. Its root is
// created at the server's first start and belongs to the site, not to any
// vendor; its targets are one small file per computer group,
// approvals/<group>.json. An agent installs nothing that this repository does
// not approve and that its vendor's repository does not also sign.
type SiteRepository struct {
	r *Repository
}

// SiteInitOptions configure a new site repository.
type SiteInitOptions struct {
	Name   string
	Expiry Expiry
	// Vendors is the first root's signed vendor list: name →
	// "sha256:<hex>" of the vendor's first root (metadata/1.root.json).
	Vendors map[string]string
	// RootKeyOut, when set, is the file the root key is written to
	// instead of the repository's keys/ directory: the server then never
	// holds it.
	RootKeyOut string
}

// InitSite creates a site repository in dir: a root key (to be exported and
// kept offline) and online targets, snapshot and timestamp keys.
func InitSite(dir string, o SiteInitOptions, opts Options) (*SiteRepository, error) {
	name := o.Name
	if name == "" {
		name = "site"
	}
	for n, fp := range o.Vendors {
		if _, err := vendorEntry(n, fp); err != nil {
			return nil, err
		}
	}
	r, err := Init(dir, InitOptions{Name: name, Expiry: o.Expiry, site: true, rootKeyOut: o.RootKeyOut, vendors: o.Vendors}, opts)
	if err != nil {
		return nil, err
	}
	return &SiteRepository{r: r}, nil
}

// OpenSite opens an existing site repository for writing.
func OpenSite(dir string, opts Options) (*SiteRepository, error) {
	r, err := Open(dir, opts)
	if err != nil {
		return nil, err
	}
	if r.cfg.Kind != kindSite {
		r.Close()
		return nil, fmt.Errorf("open %s: a %s repository, not a site repository", dir, r.cfg.Kind)
	}
	return &SiteRepository{r: r}, nil
}

// Dir is the repository's directory.
func (s *SiteRepository) Dir() string { return s.r.dir }

// Close releases the repository's lock.
func (s *SiteRepository) Close() error { return s.r.Close() }

// Root returns the current root metadata, which agents are given at
// enrollment and trust from then on.
func (s *SiteRepository) Root() ([]byte, error) {
	return os.ReadFile(s.r.metaPath("root.json"))
}

// SetApprovals signs doc as its group's approvals. Identical content changes
// nothing.
func (s *SiteRepository) SetApprovals(ctx context.Context, doc *approval.Document) error {
	js, err := doc.JSON()
	if err != nil {
		return err
	}
	unlock, err := s.r.writeLock()
	if err != nil {
		return err
	}
	defer unlock()
	st, err := s.r.load()
	if err != nil {
		return fmt.Errorf("set approvals: %w", err)
	}
	p := approval.Path(doc.Group)
	if tf, err := s.r.lookup(st, p); err != nil {
		return err
	} else if tf != nil {
		if old, err := s.r.readTarget(tf); err == nil && string(old) == string(js) {
			return nil
		}
	}
	if err := s.r.storeBytes(st, p, js); err != nil {
		return fmt.Errorf("set approvals of %s: %w", doc.Group, err)
	}
	if err := s.r.commit(st); err != nil {
		return fmt.Errorf("set approvals of %s: %w", doc.Group, err)
	}
	return nil
}

// Approvals returns a group's current approvals as signed, or an empty
// document when the group has none.
func (s *SiteRepository) Approvals(ctx context.Context, group string) (*approval.Document, error) {
	st, err := s.r.load()
	if err != nil {
		return nil, err
	}
	tf, err := s.r.lookup(st, approval.Path(group))
	if err != nil {
		return nil, err
	}
	if tf == nil {
		return &approval.Document{Group: group, Updates: []approval.Approval{}}, nil
	}
	b, err := s.r.readTarget(tf)
	if err != nil {
		return nil, err
	}
	return approval.Parse(b)
}

// RemoveGroup stops signing a group's approvals.
func (s *SiteRepository) RemoveGroup(ctx context.Context, group string) error {
	unlock, err := s.r.writeLock()
	if err != nil {
		return err
	}
	defer unlock()
	st, err := s.r.load()
	if err != nil {
		return err
	}
	if tf, err := s.r.lookup(st, approval.Path(group)); err != nil || tf == nil {
		return err
	}
	if err := s.r.setTarget(st, approval.Path(group), nil); err != nil {
		return err
	}
	return s.r.commit(st)
}

// Refresh re-signs the timestamp (and anything near expiry). A server calls
// it from a timer well inside the timestamp's validity.
func (s *SiteRepository) Refresh(ctx context.Context) (*RefreshResult, error) {
	unlock, err := s.r.writeLock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	return s.r.Refresh(ctx)
}

// Rotate replaces a role's keys; see Repository.Rotate.
func (s *SiteRepository) Rotate(ctx context.Context, role string, o RotateOptions) (*RotateResult, error) {
	unlock, err := s.r.writeLock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	return s.r.Rotate(ctx, role, o)
}

// RootKeyFiles lists the root key files still in the repository, for an
// administrator to export and move offline.
func (s *SiteRepository) RootKeyFiles() ([]string, error) {
	keys, err := loadRoleKeys(filepath.Join(s.r.dir, KeysDir), "root")
	if err != nil {
		return nil, err
	}
	var paths []string
	for _, k := range keys {
		paths = append(paths, k.path)
	}
	return paths, nil
}

// Approvals fetches and verifies a group's approvals from a site repository.
// A group the site has no document for is ErrUnknownUpdate.
func (c *Client) Approvals(ctx context.Context, group string) (*approval.Document, []byte, error) {
	tf, err := c.Target(ctx, approval.Path(group))
	if err != nil {
		return nil, nil, err
	}
	if tf.Length > approval.MaxSize {
		return nil, nil, fmt.Errorf("approvals of %s: %d bytes, over the %d byte limit", group, tf.Length, approval.MaxSize)
	}
	lim := c.cfg.MetadataLimits
	lim.MaxBytes = tf.Length
	b, err := c.cfg.Fetcher.Bytes(ctx, c.TargetURL(tf), lim)
	if err != nil {
		return nil, nil, fmt.Errorf("approvals of %s: %w", group, err)
	}
	if err := tf.VerifyLengthHashes(b); err != nil {
		return nil, nil, fmt.Errorf("approvals of %s: do not match their signed hash: %w", group, err)
	}
	d, err := approval.Parse(b)
	if err != nil {
		return nil, nil, fmt.Errorf("approvals of %s: %w", group, err)
	}
	if d.Group != group {
		return nil, nil, fmt.Errorf("approvals of %s: document is for group %q", group, d.Group)
	}
	return d, b, nil
}
