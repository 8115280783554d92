package tuf

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/bulwarkhq/bulwark/internal/catalog"
)

// Expire withdraws an update: its update.json is re-signed with withdrawn set
// and a new revision, and its payloads stop being targets, so no client can
// verify (and so install) them any more. Site servers that sync the change
// see the withdrawal and drop their approvals.
func (r *Repository) Expire(ctx context.Context, id string) (*PublishResult, error) {
	st, err := r.load()
	if err != nil {
		return nil, fmt.Errorf("expire: %w", err)
	}
	u, _, err := r.readUpdate(st, id)
	if err != nil {
		return nil, fmt.Errorf("expire: %w", err)
	}
	if u.Withdrawn {
		return &PublishResult{ID: id, Revision: u.Revision, Changed: false}, nil
	}
	u.Withdrawn = true
	u.Revision++
	js, err := u.JSON()
	if err != nil {
		return nil, err
	}
	for _, p := range u.Payloads {
		if err := r.setTarget(st, PayloadPath(id, p.File), nil); err != nil {
			return nil, err
		}
	}
	if err := r.storeUpdateJSON(st, id, js); err != nil {
		return nil, fmt.Errorf("expire %s: %w", id, err)
	}
	if err := r.commit(st); err != nil {
		return nil, fmt.Errorf("expire %s: %w", id, err)
	}
	return &PublishResult{ID: id, Revision: u.Revision, Changed: true, Targets: []string{UpdatePath(id)}}, nil
}

// Entry is one published update as the repository lists it.
type Entry struct {
	Update   *catalog.Update
	Target   *metadata.TargetFiles   // update.json
	Payloads []*metadata.TargetFiles // in the order of Update.Payloads; nil for a withdrawn update's
}

// Show returns one update.
func (r *Repository) Show(ctx context.Context, id string) (*Entry, error) {
	st, err := r.load()
	if err != nil {
		return nil, err
	}
	return r.entry(st, id)
}

func (r *Repository) entry(st *state, id string) (*Entry, error) {
	u, _, err := r.readUpdate(st, id)
	if err != nil {
		return nil, err
	}
	tf, err := r.lookup(st, UpdatePath(id))
	if err != nil {
		return nil, err
	}
	e := &Entry{Update: u, Target: tf}
	for _, p := range u.Payloads {
		ptf, err := r.lookup(st, PayloadPath(id, p.File))
		if err != nil {
			return nil, err
		}
		e.Payloads = append(e.Payloads, ptf)
	}
	return e, nil
}

// List returns every published update, sorted by id. It reads every bin, so
// it costs time in proportion to the catalog: it is for people, not for
// agents.
func (r *Repository) List(ctx context.Context) ([]*Entry, error) {
	st, err := r.load()
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, name := range st.binNames() {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		b, err := r.bin(st, name)
		if err != nil {
			return nil, err
		}
		for p := range b.Signed.Targets {
			if id, ok := strings.CutSuffix(strings.TrimPrefix(p, "updates/"), "/update.json"); ok && strings.HasPrefix(p, "updates/") {
				ids = append(ids, id)
			}
		}
	}
	sort.Strings(ids)
	entries := make([]*Entry, 0, len(ids))
	for _, id := range ids {
		e, err := r.entry(st, id)
		if err != nil {
			return nil, err
		}
		entries = append(entries, e)
	}
	return entries, nil
}

// RefreshResult says what a refresh re-signed.
type RefreshResult struct {
	Resigned []string  // role names, bins included
	Expires  time.Time // the new timestamp's expiry
	Warnings []string
}

// Refresh re-signs the timestamp, and every other online role whose metadata
// has less than half of its validity period left, so that clients never see
// expired metadata while the publisher's timer keeps running. The root is
// offline: Refresh only warns when it nears expiry.
func (r *Repository) Refresh(ctx context.Context) (*RefreshResult, error) {
	st, err := r.load()
	if err != nil {
		return nil, fmt.Errorf("refresh: %w", err)
	}
	now := r.now()
	stale := func(exp time.Time, period Duration) bool { return exp.Sub(now) < time.Duration(period)/2 }
	res := &RefreshResult{}
	for _, name := range st.binNames() {
		b, err := r.bin(st, name)
		if err != nil {
			return nil, err
		}
		if stale(b.Signed.Expires, r.cfg.Expiry.Bins) {
			st.changedBins[name] = true
		}
	}
	if n := len(st.changedBins); n > 0 {
		res.Resigned = append(res.Resigned, fmt.Sprintf("%d bins", n))
	}
	if stale(st.targets.Signed.Expires, r.cfg.Expiry.Targets) {
		st.targetsChanged = true
		res.Resigned = append(res.Resigned, metadata.TARGETS)
	}
	if len(st.changedBins) > 0 || st.targetsChanged || stale(st.snapshot.Signed.Expires, r.cfg.Expiry.Snapshot) {
		st.snapshotChanged = true
		res.Resigned = append(res.Resigned, metadata.SNAPSHOT)
	}
	res.Resigned = append(res.Resigned, metadata.TIMESTAMP)
	if err := r.commit(st); err != nil {
		return nil, fmt.Errorf("refresh: %w", err)
	}
	res.Expires = st.timestamp.Signed.Expires
	if left := st.root.Signed.Expires.Sub(now); left < 30*24*time.Hour {
		res.Warnings = append(res.Warnings, fmt.Sprintf("root metadata expires %s (in %s); sign a new root with `bulwark repo rotate %s root` and the offline root keys",
			st.root.Signed.Expires.Format(time.RFC3339), left.Round(time.Hour), r.dir))
	}
	return res, nil
}

// RotateOptions configure a key rotation.
type RotateOptions struct {
	Keys      int      // new number of keys (root only; default: as before)
	Threshold int      // new threshold (root only; default: as before)
	RootKeys  []string // extra files holding current root keys kept offline
}

// RotateResult says what a rotation did.
type RotateResult struct {
	Role        string
	RootVersion int64    // the new root version, when root changed
	NewKeys     []string // new key files
	Retired     []string // old key files, moved under keys/retired/
}

// Roles that Rotate accepts.
var RotatableRoles = []string{metadata.ROOT, metadata.TARGETS, metadata.SNAPSHOT, metadata.TIMESTAMP, binsRole}

// Rotate replaces the keys of role with new ones. For root, the new root is
// signed by a threshold of the old root keys and by every new key, so that
// clients holding the old root accept it (TUF root rotation). For targets,
// snapshot and timestamp, a new root lists the new key and the role is
// re-signed with it. For bins, targets delegates to the new key and every bin
// is re-signed. Old key files are kept under keys/retired/.
func (r *Repository) Rotate(ctx context.Context, role string, o RotateOptions) (*RotateResult, error) {
	valid := false
	for _, v := range RotatableRoles {
		valid = valid || v == role
	}
	if !valid {
		return nil, fmt.Errorf("rotate: unknown role %q; valid roles: %s", role, strings.Join(RotatableRoles, ", "))
	}
	if role != metadata.ROOT && (o.Keys != 0 || o.Threshold != 0) {
		return nil, fmt.Errorf("rotate %s: --keys and --threshold apply to root only", role)
	}
	st, err := r.load()
	if err != nil {
		return nil, fmt.Errorf("rotate: %w", err)
	}
	keyDir := filepath.Join(r.dir, KeysDir)
	res := &RotateResult{Role: role}
	now := r.now().UTC()

	if role == binsRole {
		sr := st.succinct()
		if sr == nil {
			return nil, errors.New("rotate bins: this repository has no hashed bins")
		}
		old, err := loadRoleKeys(keyDir, binsRole)
		if err != nil {
			return nil, err
		}
		k, err := generateKey(nextKeyPath(keyDir, binsRole))
		if err != nil {
			return nil, err
		}
		res.NewKeys = append(res.NewKeys, k.path)
		for _, id := range sr.KeyIDs {
			delete(st.targets.Signed.Delegations.Keys, id)
		}
		st.targets.Signed.Delegations.Keys[k.id] = k.public
		sr.KeyIDs = []string{k.id}
		sr.Threshold = 1
		st.targetsChanged = true
		for _, name := range sr.GetRoles() {
			if _, err := r.bin(st, name); err != nil {
				return nil, err
			}
			st.changedBins[name] = true
		}
		if err := r.commit(st); err != nil {
			return nil, fmt.Errorf("rotate bins: %w", err)
		}
		res.Retired = retire(keyDir, old, k.id)
		return res, nil
	}

	// Every other rotation signs a new root with the current root keys.
	oldRoot := st.root
	rootRole := oldRoot.Signed.Roles[metadata.ROOT]
	rootKeys, err := r.currentRootKeys(keyDir, o.RootKeys, rootRole)
	if err != nil {
		return nil, fmt.Errorf("rotate %s: %w", role, err)
	}
	newRoot, err := metadata.Root().FromBytes(mustBytes(oldRoot))
	if err != nil {
		return nil, err
	}
	newRoot.Signed.Version++
	newRoot.Signed.Expires = now.Add(time.Duration(r.cfg.Expiry.Root))
	signers := rootKeys
	var oldFiles []*signingKey
	if role == metadata.ROOT {
		n, t := o.Keys, o.Threshold
		if n == 0 {
			n = len(rootRole.KeyIDs)
		}
		if t == 0 {
			t = min(rootRole.Threshold, n)
		}
		if n < 1 || n > 16 || t < 1 || t > n {
			return nil, fmt.Errorf("rotate root: %d keys with threshold %d is not valid; use 1 to 16 keys and a threshold from 1 to the number of keys", n, t)
		}
		for _, id := range rootRole.KeyIDs {
			if err := newRoot.Signed.RevokeKey(id, metadata.ROOT); err != nil {
				return nil, err
			}
		}
		for i := 0; i < n; i++ {
			k, err := generateKey(nextKeyPath(keyDir, metadata.ROOT))
			if err != nil {
				return nil, err
			}
			res.NewKeys = append(res.NewKeys, k.path)
			if err := newRoot.Signed.AddKey(k.public, metadata.ROOT); err != nil {
				return nil, err
			}
			signers = append(signers, k)
		}
		newRoot.Signed.Roles[metadata.ROOT].Threshold = t
		oldFiles = rootKeys
	} else {
		old, err := loadRoleKeys(keyDir, role)
		if err != nil {
			return nil, err
		}
		k, err := generateKey(nextKeyPath(keyDir, role))
		if err != nil {
			return nil, err
		}
		res.NewKeys = append(res.NewKeys, k.path)
		for _, id := range newRoot.Signed.Roles[role].KeyIDs {
			if err := newRoot.Signed.RevokeKey(id, role); err != nil {
				return nil, err
			}
		}
		if err := newRoot.Signed.AddKey(k.public, role); err != nil {
			return nil, err
		}
		oldFiles = old
	}
	if err := r.writeRoot(newRoot, signers); err != nil {
		return nil, fmt.Errorf("rotate %s: %w", role, err)
	}
	res.RootVersion = newRoot.Signed.Version
	st.root = newRoot
	switch role {
	case metadata.TARGETS:
		st.targetsChanged = true
	case metadata.SNAPSHOT:
		st.snapshotChanged = true
	}
	// A new timestamp (and snapshot or targets, for those roles) signed with
	// the new key; clients that see the new root discard what the old keys
	// signed (fast-forward recovery).
	if err := r.commit(st); err != nil {
		return nil, fmt.Errorf("rotate %s: %w", role, err)
	}
	keep := map[string]bool{}
	for _, id := range newRoot.Signed.Roles[role].KeyIDs {
		keep[id] = true
	}
	for _, k := range oldFiles {
		if !keep[k.id] && strings.HasPrefix(k.path, keyDir+string(filepath.Separator)) {
			res.Retired = append(res.Retired, retire(keyDir, []*signingKey{k}, "")...)
		}
	}
	return res, nil
}

// currentRootKeys finds a threshold of the current root keys in the key dir
// and the extra files given.
func (r *Repository) currentRootKeys(keyDir string, extra []string, role *metadata.Role) ([]*signingKey, error) {
	found, err := loadRoleKeys(keyDir, metadata.ROOT)
	if err != nil {
		return nil, err
	}
	for _, p := range extra {
		k, err := loadKey(p)
		if err != nil {
			return nil, err
		}
		found = append(found, k)
	}
	want := map[string]bool{}
	for _, id := range role.KeyIDs {
		want[id] = true
	}
	var keys []*signingKey
	seen := map[string]bool{}
	for _, k := range found {
		if want[k.id] && !seen[k.id] {
			seen[k.id] = true
			keys = append(keys, k)
		}
	}
	if len(keys) < role.Threshold {
		return nil, fmt.Errorf("signing a new root needs %d of the current root keys; found %d (put the offline root key files in %s or pass them with --root-key FILE)", role.Threshold, len(keys), keyDir)
	}
	return keys, nil
}

// retire moves key files that are no longer in use under keys/retired/.
func retire(keyDir string, keys []*signingKey, keepID string) []string {
	var moved []string
	dst := filepath.Join(keyDir, "retired")
	if err := os.MkdirAll(dst, 0o700); err != nil {
		return nil
	}
	for _, k := range keys {
		if k.id == keepID {
			continue
		}
		to := filepath.Join(dst, fmt.Sprintf("%s.%d", filepath.Base(k.path), time.Now().UnixNano()))
		if err := os.Rename(k.path, to); err == nil {
			moved = append(moved, to)
		}
	}
	return moved
}

func mustBytes[T metadata.Roles](m *metadata.Metadata[T]) []byte {
	b, err := m.ToBytes(false)
	if err != nil {
		panic(errors.New("re-encode metadata: " + err.Error()))
	}
	return b
}
