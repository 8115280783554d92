package media

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/bulwarkhq/bulwark/internal/atomicfile"
	"github.com/bulwarkhq/bulwark/internal/capread"
	"github.com/bulwarkhq/bulwark/internal/catalog"
	"github.com/bulwarkhq/bulwark/internal/tuf"
)

// Server data directory layout (internal/server): the synced copy of each
// vendor repository and its pinned first root.
const (
	serverMirrors = "mirrors"
	serverRoots   = "roots"
)

// ImportOptions say where media go on a disconnected server.
type ImportOptions struct {
	Media   string // a media directory (see Open for an ISO)
	DataDir string // the server's data directory
	// Pins adds vendor roots pinned outside the data directory (the
	// server's configuration, --vendor NAME=sha256:…), for a server that
	// has not pinned them yet. A pin that contradicts the one the server
	// holds is refused.
	Pins map[string]string
	// PinsFrom says where each of Pins came from, and Looked every place
	// pins were looked for besides the data directory, for the errors.
	PinsFrom map[string]string
	Looked   []string
	Now      time.Time
	MaxAge   time.Duration
	Progress func(path string, done, total int64)
}

// ImportResult says what an import did for each vendor.
type ImportResult struct {
	Vendors map[string]*tuf.MirrorResult `json:"vendors"`
	Report  *Report                      `json:"report"`
}

// ServerPins reads the vendor roots a server's data directory already
// trusts (roots/<vendor>.json) as fingerprints, and the timestamp version
// of each mirror it serves.
func ServerPins(dataDir string) (pins map[string]string, known map[string]int64, err error) {
	pins, known = map[string]string{}, map[string]int64{}
	ents, err := os.ReadDir(filepath.Join(dataDir, serverRoots))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, nil, err
	}
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || strings.HasPrefix(name, ".") {
			continue
		}
		b, err := capread.File(filepath.Join(dataDir, serverRoots, e.Name()), maxRootSize)
		if err != nil {
			return nil, nil, err
		}
		pins[name] = tuf.RootFingerprint(b)
		if tb, err := capread.File(filepath.Join(dataDir, serverMirrors, name, tuf.MetadataDir, "timestamp.json"), maxTimestampSize); err == nil {
			if ts, err := metadata.Timestamp().FromBytes(tb); err == nil {
				known[name] = ts.Signed.Version
			}
		}
	}
	return pins, known, nil
}

// Import brings the media's vendor repositories into a server's data
// directory by the code path of a sync: tuf.Mirror reads the media through
// file:// URLs, verifies every file from the pinned root, refuses a
// rollback against what the server serves, writes new metadata and targets
// under names nothing refers to yet and switches with the timestamp last,
// so a kill at any point leaves the previous state served and the next
// import finishes the work. Media naming a vendor the server does not
// already trust are refused before anything is written.
func Import(ctx context.Context, o ImportOptions) (*ImportResult, error) {
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	if o.MaxAge == 0 {
		o.MaxAge = DefaultMaxAge
	}
	if _, err := os.Stat(filepath.Join(o.DataDir, "FORMAT")); err != nil {
		return nil, fmt.Errorf("data dir %s: not a bulwark server's data directory (start `bulwark server --data-dir %s` once first)", o.DataDir, o.DataDir)
	}
	pins, known, err := ServerPins(o.DataDir)
	if err != nil {
		return nil, fmt.Errorf("data dir %s: %w", o.DataDir, err)
	}
	for name, fp := range o.Pins {
		if have, ok := pins[name]; ok && have != fp {
			from := o.PinsFrom[name]
			if from == "" {
				from = "--vendor"
			}
			return nil, fmt.Errorf("vendor %s: %s pins %s, but this server already trusts root %s; remove %s to pin again", name, from, fp, have, filepath.Join(o.DataDir, serverRoots, name+".json"))
		}
		pins[name] = fp
	}
	looked := append([]string{"the server's data directory " + o.DataDir + " (" + serverRoots + "/)"}, o.Looked...)
	rep, err := Verify(ctx, o.Media, Trust{Vendors: pins, Known: known, Now: o.Now, MaxAge: o.MaxAge, LengthOnly: true, Looked: strings.Join(looked, ", ")})
	if err != nil {
		return nil, err
	}
	res := &ImportResult{Vendors: map[string]*tuf.MirrorResult{}, Report: rep}
	if err := rep.Err(); err != nil {
		return res, err
	}
	media, err := filepath.Abs(o.Media)
	if err != nil {
		return res, err
	}
	fr := freshness{now: o.Now, maxAge: o.MaxAge}
	for _, mv := range rep.manifest.Vendors {
		st := rep.vendors[mv.Name]
		ref, err := fr.refTime(st.tsExpires)
		if err != nil {
			return res, err
		}
		ids := map[string]bool{}
		for _, u := range mv.Updates {
			ids[u.ID] = true
		}
		dir := filepath.Join(media, VendorsDir, mv.Name)
		mr, err := tuf.Mirror(ctx, tuf.MirrorConfig{
			TrustedRoot: rep.roots[mv.Name],
			MetadataURL: "file://" + filepath.Join(dir, tuf.MetadataDir),
			TargetsURL:  "file://" + filepath.Join(dir, tuf.TargetsDir),
			Dir:         filepath.Join(o.DataDir, serverMirrors, mv.Name),
			Include:     func(u *catalog.Update) bool { return ids[u.ID] },
			Now:         func() time.Time { return ref },
			Progress:    o.Progress,
		})
		if err != nil {
			return res, fmt.Errorf("import vendor %s: %w", mv.Name, err)
		}
		res.Vendors[mv.Name] = mr
		rootFile := filepath.Join(o.DataDir, serverRoots, mv.Name+".json")
		if _, err := os.Stat(rootFile); errors.Is(err, os.ErrNotExist) {
			if err := os.MkdirAll(filepath.Dir(rootFile), 0o700); err != nil {
				return res, err
			}
			if err := atomicfile.WriteFile(rootFile, rep.roots[mv.Name], 0o644); err != nil {
				return res, err
			}
		}
	}
	return res, nil
}
