package tuf

import (
	"encoding/hex"
	"fmt"
	"net/url"
	"path"
	"strings"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/bulwarkhq/bulwark/internal/fetch"
)

// targetWant is what a target's bytes must be: its length and every listed
// hash of an algorithm Bulwark checks (sha256, sha512). Hashes of other
// algorithms are ignored, as the TUF specification allows; a target with
// no hash Bulwark can check is refused.
func targetWant(tf *metadata.TargetFiles) (fetch.Want, error) {
	w := fetch.Want{Length: tf.Length}
	if h, ok := tf.Hashes["sha256"]; ok {
		w.SHA256 = hex.EncodeToString(h)
	}
	if h, ok := tf.Hashes["sha512"]; ok {
		w.SHA512 = hex.EncodeToString(h)
	}
	if w.SHA256 == "" && w.SHA512 == "" {
		algs := make([]string, 0, len(tf.Hashes))
		for a := range tf.Hashes {
			algs = append(algs, a)
		}
		return w, fmt.Errorf("target %s lists no sha256 or sha512 hash (has %v)", tf.Path, algs)
	}
	return w, nil
}

// checkTarget verifies bytes in memory against a target's length and every
// supported hash.
func checkTarget(tf *metadata.TargetFiles, b []byte) error {
	w, err := targetWant(tf)
	if err != nil {
		return err
	}
	return w.Check(b)
}

// targetName is the file name of a target inside its directory: with
// consistent snapshots <hash>.<base> (sha256 when listed, else sha512),
// else the plain base name.
func targetName(tf *metadata.TargetFiles, consistent bool) string {
	base := path.Base(tf.Path)
	if !consistent {
		return base
	}
	h, ok := tf.Hashes["sha256"]
	if !ok {
		h = tf.Hashes["sha512"]
	}
	return hex.EncodeToString(h) + "." + base
}

// targetURL is where a target's bytes are under targetsURL.
func targetURL(targetsURL string, tf *metadata.TargetFiles, consistent bool) string {
	u := strings.TrimSuffix(targetsURL, "/") + "/"
	dir := path.Dir(tf.Path)
	for _, seg := range strings.Split(dir, "/") {
		if seg != "" && seg != "." {
			u += url.PathEscape(seg) + "/"
		}
	}
	return u + url.PathEscape(targetName(tf, consistent))
}
