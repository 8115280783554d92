package tuf

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/bulwarkhq/bulwark/internal/capread"
)

// Expiries reads when a repository directory's current top-level metadata
// expire: the newest root, the timestamp, and the snapshot and targets the
// timestamp and snapshot name. It verifies no signature (for monitoring a
// repository this process keeps, never for trusting one); a role whose file
// is missing or does not parse is left out and named in the error.
func Expiries(dir string) (map[string]time.Time, error) {
	md := filepath.Join(dir, MetadataDir)
	out := map[string]time.Time{}
	var problems []string
	read := func(role, name string) *signedMeta {
		b, err := capread.File(filepath.Join(md, name), 64<<20)
		if err != nil {
			problems = append(problems, role+": "+err.Error())
			return nil
		}
		var m struct {
			Signed signedMeta `json:"signed"`
		}
		if err := json.Unmarshal(b, &m); err != nil || m.Signed.Expires.IsZero() {
			problems = append(problems, fmt.Sprintf("%s: %s does not parse as TUF metadata", role, name))
			return nil
		}
		out[role] = m.Signed.Expires
		return &m.Signed
	}
	if n := newestRoot(md); n > 0 {
		read("root", strconv.FormatInt(n, 10)+".root.json")
	} else {
		problems = append(problems, "root: no N.root.json in "+md)
	}
	if ts := read("timestamp", "timestamp.json"); ts != nil {
		if sv := ts.Meta["snapshot.json"].Version; sv > 0 {
			if sn := read("snapshot", strconv.FormatInt(sv, 10)+".snapshot.json"); sn != nil {
				if tv := sn.Meta["targets.json"].Version; tv > 0 {
					read("targets", strconv.FormatInt(tv, 10)+".targets.json")
				}
			}
		}
	}
	if len(problems) > 0 {
		return out, fmt.Errorf("metadata expiry of %s: %s", dir, strings.Join(problems, "; "))
	}
	return out, nil
}

type signedMeta struct {
	Expires time.Time `json:"expires"`
	Meta    map[string]struct {
		Version int64 `json:"version"`
	} `json:"meta"`
}

// newestRoot is the highest N of the N.root.json files in md, 0 if none.
func newestRoot(md string) int64 {
	ents, err := os.ReadDir(md)
	if err != nil {
		return 0
	}
	var n int64
	for _, e := range ents {
		v, ok := strings.CutSuffix(e.Name(), ".root.json")
		if !ok {
			continue
		}
		if i, err := strconv.ParseInt(v, 10, 64); err == nil && i > n {
			n = i
		}
	}
	return n
}
