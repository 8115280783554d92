package tuf

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/config"
	"github.com/theupdateframework/go-tuf/v2/metadata/trustedmetadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/updater"

	"github.com/bulwarkhq/bulwark/internal/catalog"
	"github.com/bulwarkhq/bulwark/internal/fetch"
)

// ClientConfig configures a Client.
type ClientConfig struct {
	// TrustedRoot is the root metadata the client starts from the first
	// time (shipped with the agent, pinned at enrollment). Later runs start
	// from the newest root verified into CacheDir.
	TrustedRoot []byte
	// MetadataURL and TargetsURL are the repository's two directories:
	// http(s):// URLs or file:// URLs of a directory.
	MetadataURL, TargetsURL string
	// CacheDir keeps verified metadata between runs, which is what makes
	// rollback and freeze attacks detectable across restarts. Required.
	CacheDir string
	// Fetcher moves the bytes; nil → fetch.New with defaults.
	Fetcher *fetch.Client
	// Now is the reference time for expiry (tests); nil → time.Now.
	Now func() time.Time
	// MetadataLimits bound each metadata download (slow-retrieval attack);
	// MaxBytes is set per file from the role's cap. Zero Timeout → 2m.
	MetadataLimits fetch.Limits
}

// Client reads a vendor repository with every file verified from its root.
// It is not safe for concurrent use.
type Client struct {
	cfg ClientConfig
	up  *updater.Updater
}

// NewClient checks cfg and prepares the cache directory. It does no I/O on
// the network; call Refresh.
func NewClient(cfg ClientConfig) (*Client, error) {
	if len(cfg.TrustedRoot) == 0 {
		return nil, errors.New("tuf client: no trusted root")
	}
	if cfg.MetadataURL == "" || cfg.TargetsURL == "" {
		return nil, errors.New("tuf client: metadata and targets URLs are required")
	}
	if cfg.CacheDir == "" {
		return nil, errors.New("tuf client: a cache directory is required")
	}
	if err := os.MkdirAll(cfg.CacheDir, 0o700); err != nil {
		return nil, fmt.Errorf("tuf client: %w", err)
	}
	if cfg.Fetcher == nil {
		cfg.Fetcher = fetch.New(fetch.Options{})
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MetadataLimits.Timeout == 0 {
		cfg.MetadataLimits.Timeout = 2 * time.Minute
	}
	return &Client{cfg: cfg}, nil
}

// Refresh fetches and verifies the top-level metadata: every new root
// version in turn, then timestamp, snapshot and targets. Bins are fetched on
// demand by lookups.
func (c *Client) Refresh(ctx context.Context) error {
	root := c.cfg.TrustedRoot
	if b, err := os.ReadFile(filepath.Join(c.cfg.CacheDir, "root.json")); err == nil {
		root = b
	}
	uc, err := config.New(c.cfg.MetadataURL, root)
	if err != nil {
		return fmt.Errorf("tuf client: %w", err)
	}
	uc.LocalMetadataDir = c.cfg.CacheDir
	uc.LocalTargetsDir = filepath.Join(c.cfg.CacheDir, "targets")
	uc.RemoteTargetsURL = c.cfg.TargetsURL
	uc.DisableLocalCache = false
	uc.RootMaxLength = maxRootSize
	uc.TimestampMaxLength = maxTimestampSize
	uc.SnapshotMaxLength = maxSnapshotSize
	uc.TargetsMaxLength = maxTargetsSize
	uc.Fetcher = c.cfg.Fetcher.TUFFetcher(ctx, c.cfg.MetadataLimits)
	up, err := updater.New(uc)
	if err != nil {
		return fmt.Errorf("tuf client: %w", err)
	}
	up.UnsafeSetRefTime(c.cfg.Now().UTC())
	if err := up.Refresh(); err != nil {
		return fmt.Errorf("refresh %s: %w", c.cfg.MetadataURL, err)
	}
	if err := checkDelegations(up.GetTrustedMetadataSet()); err != nil {
		return fmt.Errorf("refresh %s: %w", c.cfg.MetadataURL, err)
	}
	c.up = up
	return nil
}

// ErrDelegation means a repository delegates in a shape Bulwark does not
// write and so does not trust: anything but top-level targets listing
// targets directly or delegating to succinct hashed bins that list targets
// directly. Refusing other shapes keeps the client out of go-tuf's
// delegation graph walk, where a role reached through two delegators is
// reused from the cache without being checked against the second.
var ErrDelegation = errors.New("unsupported delegation")

// checkDelegations checks every targets role loaded so far.
func checkDelegations(trusted trustedmetadata.TrustedMetadata) error {
	top := trusted.Targets[metadata.TARGETS]
	if top == nil {
		return nil
	}
	d := top.Signed.Delegations
	if d != nil && (len(d.Roles) > 0 || d.SuccinctRoles == nil) {
		return fmt.Errorf("targets: %w: delegates to named roles; only succinct hashed bins are accepted", ErrDelegation)
	}
	for name, role := range trusted.Targets {
		if name == metadata.TARGETS {
			continue
		}
		if d == nil || !d.SuccinctRoles.IsDelegatedRole(name) {
			return fmt.Errorf("%s: %w: not a hashed bin of targets", name, ErrDelegation)
		}
		if role.Signed.Delegations != nil {
			return fmt.Errorf("%s: %w: a hashed bin delegates further", name, ErrDelegation)
		}
	}
	return nil
}

// Target returns the verified target info of a path, fetching and verifying
// the one bin that holds it. ErrUnknownUpdate-wrapping errors mean the path
// is not a target.
func (c *Client) Target(ctx context.Context, p string) (*metadata.TargetFiles, error) {
	if c.up == nil {
		if err := c.Refresh(ctx); err != nil {
			return nil, err
		}
	}
	tf, err := c.up.GetTargetInfo(p)
	if derr := checkDelegations(c.up.GetTrustedMetadataSet()); derr != nil {
		return nil, fmt.Errorf("look up %s: %w", p, derr)
	}
	if err != nil {
		// go-tuf reports a path that no role lists only by this message.
		if err.Error() == fmt.Sprintf("target %s not found", p) {
			return nil, fmt.Errorf("%s: %w", p, ErrUnknownUpdate)
		}
		return nil, fmt.Errorf("look up %s: %w", p, err)
	}
	return tf, nil
}

// UpdateInfo is an update's verified metadata.
type UpdateInfo struct {
	Update *catalog.Update
	Raw    []byte                // the exact signed-for bytes of update.json
	Target *metadata.TargetFiles // update.json's target info
}

// Update looks up one update: one bin, then its update.json, verified
// against the bin's length and hash before it is parsed.
func (c *Client) Update(ctx context.Context, id string) (*UpdateInfo, error) {
	tf, err := c.Target(ctx, UpdatePath(id))
	if err != nil {
		return nil, err
	}
	if tf.Length > catalog.MaxJSONSize {
		return nil, fmt.Errorf("update %s: update.json is %d bytes, over the %d byte limit", id, tf.Length, catalog.MaxJSONSize)
	}
	lim := c.cfg.MetadataLimits
	lim.MaxBytes = tf.Length
	b, err := c.cfg.Fetcher.Bytes(ctx, c.TargetURL(tf), lim)
	if err != nil {
		return nil, fmt.Errorf("update %s: %w", id, err)
	}
	if err := checkTarget(tf, b); err != nil {
		return nil, fmt.Errorf("update %s: update.json does not match its signed hash: %w", id, err)
	}
	u, err := catalog.ParseJSON(b)
	if err != nil {
		return nil, fmt.Errorf("update %s: %w", id, err)
	}
	if u.ID != id {
		return nil, fmt.Errorf("update %s: update.json names id %q", id, u.ID)
	}
	return &UpdateInfo{Update: u, Raw: b, Target: tf}, nil
}

// ErrMismatch means two signed statements about one payload disagree.
var ErrMismatch = errors.New("signed metadata disagree")

// Payload returns the verified target info of one payload of an update. The
// payload must be a target of its own, and its length and hash must equal
// what the update's signed update.json lists.
func (c *Client) Payload(ctx context.Context, info *UpdateInfo, file string) (*metadata.TargetFiles, error) {
	var listed *catalog.Payload
	for i := range info.Update.Payloads {
		if info.Update.Payloads[i].File == file {
			listed = &info.Update.Payloads[i]
		}
	}
	if listed == nil {
		return nil, fmt.Errorf("update %s has no payload %q", info.Update.ID, file)
	}
	tf, err := c.Target(ctx, PayloadPath(info.Update.ID, file))
	if err != nil {
		return nil, err
	}
	if tf.Length != listed.Length || hex.EncodeToString(tf.Hashes["sha256"]) != listed.SHA256 {
		return nil, fmt.Errorf("payload %s of %s: %w: target says %d bytes sha256 %x, update.json says %d bytes sha256 %s",
			file, info.Update.ID, ErrMismatch, tf.Length, tf.Hashes["sha256"], listed.Length, listed.SHA256)
	}
	return tf, nil
}

// Download streams a target to dst, verifying its length and every listed
// sha256/sha512 hash while it writes; dst appears only once verified.
func (c *Client) Download(ctx context.Context, tf *metadata.TargetFiles, dst string, opts fetch.FileOptions) error {
	want, err := targetWant(tf)
	if err != nil {
		return fmt.Errorf("download %s: %w", tf.Path, err)
	}
	return c.cfg.Fetcher.File(ctx, c.TargetURL(tf), dst, want, opts)
}

// TargetURL is where a target's bytes are: TARGETS/dir/<hash>.<base> when
// the trusted root says consistent_snapshot, else TARGETS/dir/<base>.
func (c *Client) TargetURL(tf *metadata.TargetFiles) string {
	consistent := true
	if c.up != nil {
		consistent = c.up.GetTrustedMetadataSet().Root.Signed.ConsistentSnapshot
	}
	return targetURL(c.cfg.TargetsURL, tf, consistent)
}
