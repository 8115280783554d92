package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"

	"github.com/bulwarkhq/bulwark/internal/tuf"
)

// The site's trusted vendors are signed into the site root by the offline
// site root key (internal/tuf, sitevendors.go). The server only serves that
// list and compares it with the repositories it is configured with: agents
// enforce it, so a server that lies about it changes nothing.

// firstRootVendors is the vendor list of a new site's first root: the
// vendors the server is started with, which the root key, still at hand on
// first start, signs.
func firstRootVendors(cfg Config) (map[string]string, error) {
	out := map[string]string{}
	for _, v := range cfg.Vendors {
		root, err := os.ReadFile(filepath.Join(v.Dir, tuf.MetadataDir, "1.root.json"))
		if err != nil {
			return nil, fmt.Errorf("vendor repository %s: %w (make it with `bulwark repo init`)", v.Name, err)
		}
		out[v.Name] = tuf.RootFingerprint(root)
	}
	if u := cfg.Upstream; u != nil {
		for _, v := range u.Vendors {
			fp, err := tuf.ParseRootFingerprint(v.RootFingerprint)
			if err != nil {
				return nil, fmt.Errorf("upstream vendor %s: %w", v.Name, err)
			}
			out[v.Name] = fp
		}
	}
	return out, nil
}

// maxSiteRootBody caps a published site root (base64 in JSON).
const maxSiteRootBody = 1 << 20

// Site trust of a vendor repository, as RepoInfo.SiteTrust says it.
const (
	trustSigned     = "signed"       // in the site root's vendor list with this root
	trustUnlisted   = "unlisted"     // not in the list: agents refuse its updates
	trustRootDiffer = "root-differs" // listed with another root: agents refuse its updates
)

// readTrust reads the site root's vendor list (again, after the site
// repository changed, here or on another replica).
func (s *Server) readTrust() error {
	v, err := s.site.Vendors()
	if err != nil {
		return fmt.Errorf("site repository: %w", err)
	}
	s.trustMu.Lock()
	s.trusted = v
	s.trustMu.Unlock()
	return nil
}

// loadTrust reads the site root's vendor list and says, in the log, which
// configured vendor repositories agents will refuse.
func (s *Server) loadTrust() error {
	if err := s.readTrust(); err != nil {
		return err
	}
	for _, rp := range s.sortedRepos() {
		rp.mu.Lock()
		sum := rp.rootSum
		rp.mu.Unlock()
		switch t := s.siteTrust(rp.name, sum); t {
		case trustUnlisted, trustRootDiffer:
			s.log.Warn("agents will refuse this vendor's updates: it is not in the site root's signed vendor list with this root; run `bulwark admin vendors trust` with the offline site root key",
				"vendor", rp.name, "root", orUnknown(rp.rootSum), "trust", t)
		}
	}
	return nil
}

func orUnknown(s string) string {
	if s == "" {
		return "not pinned yet"
	}
	return s
}

// siteTrust says whether the site root's signed vendor list names vendor
// name with the root whose fingerprint is sum.
func (s *Server) siteTrust(name, sum string) string {
	s.trustMu.Lock()
	fp, ok := s.trusted[name]
	s.trustMu.Unlock()
	switch {
	case !ok:
		return trustUnlisted
	case sum != "" && sum != fp:
		return trustRootDiffer
	}
	return trustSigned
}

// SiteRootFingerprint is the fingerprint of the site's first root, which
// the enrollment command carries so that an agent trusts no other.
func (s *Server) SiteRootFingerprint() (string, error) {
	b, err := s.site.FirstRoot()
	if err != nil {
		return "", err
	}
	return tuf.RootFingerprint(b), nil
}

// SiteRootKeyOnDisk reports whether the site root key is still in the data
// directory.
func (s *Server) SiteRootKeyOnDisk() bool {
	on, err := s.site.RootKeyOnDisk()
	return err == nil && on
}

// SiteRoot is the site root as the admin API shows it: the current root
// metadata (to be signed anew offline), its version and its vendor list.
type SiteRoot struct {
	Version     int64             `json:"version"`
	Fingerprint string            `json:"first_root_fingerprint"`
	Vendors     map[string]string `json:"vendors"`
	Root        []byte            `json:"root"` // the current root metadata (base64 in JSON)
	KeyOnServer bool              `json:"root_key_on_server"`
}

func (s *Server) siteRoot() (*SiteRoot, error) {
	b, err := os.ReadFile(filepath.Join(s.site.Dir(), tuf.MetadataDir, "root.json"))
	if err != nil {
		return nil, err
	}
	v, err := s.site.Vendors()
	if err != nil {
		return nil, err
	}
	fp, err := s.SiteRootFingerprint()
	if err != nil {
		return nil, err
	}
	var version struct {
		Signed struct {
			Version int64 `json:"version"`
		} `json:"signed"`
	}
	if err := json.Unmarshal(b, &version); err != nil {
		return nil, err
	}
	return &SiteRoot{Version: version.Signed.Version, Fingerprint: fp, Vendors: v, Root: b, KeyOnServer: s.SiteRootKeyOnDisk()}, nil
}

func (s *Server) apiGetSiteRoot(w http.ResponseWriter, r *http.Request) error {
	sr, err := s.siteRoot()
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, sr)
	return nil
}

// SiteRootRequest publishes a site root signed offline.
type SiteRootRequest struct {
	Root []byte `json:"root"`
}

// apiPutSiteRoot publishes the next site root version, signed offline with
// the site root key (`bulwark admin vendors trust|untrust`). The server
// checks it as agents will and cannot make one itself.
func (s *Server) apiPutSiteRoot(w http.ResponseWriter, r *http.Request) error {
	var req SiteRootRequest
	if err := decodeBody(w, r, maxSiteRootBody, &req); err != nil {
		return err
	}
	unlock, err := s.lockSite(r.Context())
	if err != nil {
		return err
	}
	defer unlock()
	root, err := s.site.PublishRoot(req.Root)
	if err != nil {
		return &httpError{code: http.StatusBadRequest, msg: err.Error(), err: err}
	}
	s.forgetApprovals() // here and on every replica, with the vendor list
	if err := s.loadTrust(); err != nil {
		return err
	}
	s.log.Info("site root published", "version", root.Signed.Version, "by", tokenFrom(r.Context()).ID)
	sr, err := s.siteRoot()
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, sr)
	return nil
}
