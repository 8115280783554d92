package server

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/bulwarkhq/bulwark/internal/capread"
	"github.com/bulwarkhq/bulwark/internal/fetch"
	"github.com/bulwarkhq/bulwark/internal/tuf"
)

// Repository files are served from DIR/metadata and DIR/targets only, never
// DIR/keys, through os.Root so that no name, encoded or not, and no
// symbolic link can reach outside those directories. Names starting with a
// dot (temporary files) and unfinished downloads are never served.

var versionedMeta = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[0-9]+\.[a-z0-9._-]+\.json$`) })

// maxGzipCache bounds the in-memory cache of compressed metadata.
const (
	maxGzipCacheEntries = 4096
	maxGzipFile         = 1 << 20
)

type gzEntry struct {
	etag string
	data []byte
}

type gzCache struct {
	mu sync.Mutex
	m  map[string]gzEntry
}

func (c *gzCache) get(key, etag string, load func() ([]byte, error)) ([]byte, error) {
	c.mu.Lock()
	e, ok := c.m[key]
	c.mu.Unlock()
	if ok && e.etag == etag {
		return e.data, nil
	}
	raw, err := load()
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	zw.Write(raw)
	zw.Close()
	c.mu.Lock()
	if c.m == nil || len(c.m) >= maxGzipCacheEntries {
		c.m = map[string]gzEntry{}
	}
	c.m[key] = gzEntry{etag: etag, data: buf.Bytes()}
	c.mu.Unlock()
	return buf.Bytes(), nil
}

// metaCache holds small metadata files in memory. Versioned metadata never
// changes, so it is kept until the cache is full; timestamp.json and
// root.json, replaced in place, are looked at again after metaTTL, a delay
// TUF clients are indifferent to (freshness is the timestamp's expiry).
type metaCache struct {
	mu    sync.Mutex
	m     map[string]*metaEntry
	bytes int
}

type metaEntry struct {
	data    []byte
	mod     time.Time
	etag    string
	checked time.Time
	mutable bool
}

const (
	metaTTL          = time.Second
	maxMetaCacheFile = 64 << 10
	maxMetaCache     = 64 << 20
)

func (c *metaCache) get(key string, now time.Time) *metaEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.m[key]
	if e == nil || (e.mutable && now.Sub(e.checked) > metaTTL) {
		return nil
	}
	return e
}

func (c *metaCache) put(key string, e *metaEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || c.bytes+len(e.data) > maxMetaCache {
		c.m, c.bytes = map[string]*metaEntry{}, 0
	}
	if old := c.m[key]; old != nil {
		c.bytes -= len(old.data)
	}
	c.m[key] = e
	c.bytes += len(e.data)
}

// purge forgets every file of one repository directory, after the server
// itself changed it.
func (c *metaCache) purge(repoDir string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, e := range c.m {
		if strings.HasPrefix(k, repoDir+"\x00") {
			c.bytes -= len(e.data)
			delete(c.m, k)
		}
	}
}

// rootCache keeps one os.Root open per served directory, so a request costs
// one openat below it instead of opening the directory again.
type rootCache struct {
	mu sync.Mutex
	m  map[string]*os.Root
}

func (c *rootCache) get(dir string, fresh bool) (*os.Root, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r, ok := c.m[dir]; ok && !fresh {
		return r, nil
	}
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	if c.m == nil {
		c.m = map[string]*os.Root{}
	}
	if old := c.m[dir]; old != nil {
		old.Close()
	}
	c.m[dir] = r
	return r, nil
}

// open opens name below dir; a directory replaced since it was first opened
// (a mirror made again) is opened afresh once.
func (c *rootCache) open(dir, name string) (*os.File, error) {
	r, err := c.get(dir, false)
	if err != nil {
		return nil, err
	}
	f, err := r.Open(name)
	if err == nil {
		return f, nil
	}
	now, serr := os.Stat(dir)
	then, rerr := r.Stat(".")
	if serr != nil || rerr != nil || os.SameFile(now, then) {
		return nil, err
	}
	if r, err = c.get(dir, true); err != nil {
		return nil, err
	}
	return r.Open(name)
}

func (c *rootCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range c.m {
		r.Close()
	}
	c.m = nil
}

// cleanRepoPath checks a request path inside a repository directory: slash
// separated components, none empty, "." or "..", none hidden, no
// backslashes or NUL, no unfinished downloads.
func cleanRepoPath(p string) (string, error) {
	if p == "" || len(p) > 1024 {
		return "", errorf(http.StatusNotFound, "not found")
	}
	for _, c := range strings.Split(p, "/") {
		if c == "" || c == "." || c == ".." || strings.HasPrefix(c, ".") || strings.ContainsAny(c, "\\\x00") ||
			strings.HasSuffix(c, fetch.PartialSuffix) || strings.HasSuffix(c, fetch.MetaSuffix) {
			return "", errorf(http.StatusNotFound, "not found")
		}
	}
	if path.Clean(p) != p {
		return "", errorf(http.StatusNotFound, "not found")
	}
	return p, nil
}

// serveRepoFile serves one file of a repository's metadata or targets
// directory.
func (s *Server) serveRepoFile(w http.ResponseWriter, r *http.Request, repoDir, sub, name string) error {
	p, err := cleanRepoPath(name)
	if err != nil {
		return err
	}
	if sub == tuf.MetadataDir && strings.Contains(p, "/") {
		return errorf(http.StatusNotFound, "not found")
	}
	base := path.Base(p)
	key := repoDir + "\x00" + sub + "\x00" + p
	if sub == tuf.MetadataDir {
		now := time.Now()
		e := s.meta.get(key, now)
		if e == nil {
			if e, err = s.loadMeta(repoDir, sub, p, now); err != nil {
				return err
			}
			e.mutable = !versionedMeta().MatchString(base)
			if len(e.data) <= maxMetaCacheFile {
				s.meta.put(key, e)
			}
		}
		return s.serveMeta(w, r, key, base, e)
	}
	f, err := s.roots.open(filepath.Join(repoDir, sub), p)
	if err != nil {
		return errorf(http.StatusNotFound, "not found")
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return errorf(http.StatusNotFound, "not found")
	}
	targetHeaders(w.Header(), base, fi.Size(), fi.ModTime())
	// ServeContent handles If-None-Match, If-Modified-Since and Range; with
	// an *os.File on a plain TCP connection the copy goes through sendfile.
	http.ServeContent(w, r, "", fi.ModTime(), f)
	return nil
}

// targetHeaders are the headers of a target, from the directory or the
// content store alike. A target named after its SHA-256 has that hash for
// its ETag, so that an agent resuming a download with If-Range gets the
// rest from any replica and either store.
func targetHeaders(h http.Header, base string, size int64, mod time.Time) {
	// Targets are stored under their hash: a name never changes content.
	h.Set("Cache-Control", "public, max-age=31536000, immutable")
	h.Set("Content-Type", contentType(base))
	h.Set("X-Content-Type-Options", "nosniff")
	if sum, _, ok := strings.Cut(base, "."); ok && len(sum) == 64 && strings.Trim(sum, "0123456789abcdef") == "" {
		h.Set("ETag", fmt.Sprintf(`"%s-%x"`, sum, size))
	} else {
		h.Set("ETag", fmt.Sprintf(`"%x-%x"`, size, mod.UnixNano()))
	}
}

// loadMeta reads one metadata file, capped.
func (s *Server) loadMeta(repoDir, sub, p string, now time.Time) (*metaEntry, error) {
	f, err := s.roots.open(filepath.Join(repoDir, sub), p)
	if err != nil {
		return nil, errorf(http.StatusNotFound, "not found")
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() || fi.Size() > maxGzipFile {
		return nil, errorf(http.StatusNotFound, "not found")
	}
	data, err := io.ReadAll(io.LimitReader(f, maxGzipFile))
	if err != nil {
		return nil, err
	}
	return &metaEntry{data: data, mod: fi.ModTime(), etag: fmt.Sprintf(`"%x-%x"`, fi.Size(), fi.ModTime().UnixNano()), checked: now}, nil
}

// serveMeta answers with one metadata file: revalidated always for the
// files replaced in place, immutable for versioned ones, gzip when the
// client takes it.
func (s *Server) serveMeta(w http.ResponseWriter, r *http.Request, key, base string, e *metaEntry) error {
	h := w.Header()
	if e.mutable {
		// timestamp.json and root.json change in place: always revalidate.
		h.Set("Cache-Control", "no-cache")
	} else {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	}
	h.Set("Content-Type", contentType(base))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Vary", "Accept-Encoding")
	if r.Header.Get("Range") == "" && acceptsGzip(r) {
		gz, err := s.gz.get(key, e.etag, func() ([]byte, error) { return e.data, nil })
		if err != nil {
			return err
		}
		h.Set("Content-Encoding", "gzip")
		h.Set("ETag", strings.TrimSuffix(e.etag, `"`)+`-gz"`)
		http.ServeContent(w, r, "", e.mod, bytes.NewReader(gz))
		return nil
	}
	h.Set("ETag", e.etag)
	http.ServeContent(w, r, "", e.mod, bytes.NewReader(e.data))
	return nil
}

func contentType(base string) string {
	switch {
	case strings.HasSuffix(base, ".json"):
		return "application/json"
	case strings.HasSuffix(base, ".deb"):
		return "application/vnd.debian.binary-package"
	}
	if t := mime.TypeByExtension(path.Ext(base)); t != "" {
		return t
	}
	return "application/octet-stream"
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.TrimSpace(enc) == "gzip" && !strings.Contains(strings.ReplaceAll(q, " ", ""), "q=0") {
			return true
		}
	}
	return false
}

func (s *Server) handleRepoMetadata(w http.ResponseWriter, r *http.Request) error {
	rp, ok := s.repos[r.PathValue("repo")]
	if !ok {
		return errorf(http.StatusNotFound, "no repository %q", r.PathValue("repo"))
	}
	return s.serveRepoFile(w, r, rp.dir, tuf.MetadataDir, r.PathValue("file"))
}

func (s *Server) handleRepoTargets(w http.ResponseWriter, r *http.Request) error {
	rp, ok := s.repos[r.PathValue("repo")]
	if !ok {
		return errorf(http.StatusNotFound, "no repository %q", r.PathValue("repo"))
	}
	if s.cfg.Content != nil && rp.upstreamTU == "" {
		p, err := cleanRepoPath(r.PathValue("path"))
		if err != nil {
			return err
		}
		if s.serveContent(w, r, rp, p) {
			return nil
		}
	}
	return s.serveRepoFile(w, r, rp.dir, tuf.TargetsDir, r.PathValue("path"))
}

func (s *Server) handleSiteMetadata(w http.ResponseWriter, r *http.Request) error {
	return s.serveRepoFile(w, r, s.site.Dir(), tuf.MetadataDir, r.PathValue("file"))
}

func (s *Server) handleSiteTargets(w http.ResponseWriter, r *http.Request) error {
	return s.serveRepoFile(w, r, s.site.Dir(), tuf.TargetsDir, r.PathValue("path"))
}

// RepoInfo describes one vendor repository this server serves.
type RepoInfo struct {
	Name             string     `json:"name"`
	Kind             string     `json:"kind"` // hosted | mirror
	RootFingerprint  string     `json:"root_fingerprint,omitempty"`
	MetadataURL      string     `json:"metadata_url"`
	TargetsURL       string     `json:"targets_url"`
	TimestampVersion int64      `json:"timestamp_version,omitempty"`
	TimestampExpires *time.Time `json:"timestamp_expires,omitempty"`
	// SiteTrust says whether the site root's signed vendor list names this
	// repository with this root: signed, unlisted or root-differs. Agents
	// refuse the updates of a repository that is not signed.
	SiteTrust string `json:"site_trust"`
}

func (s *Server) repoInfo(r *repo) RepoInfo {
	r.mu.Lock() // a first sync or media import sets the root
	rootSum := r.rootSum
	r.mu.Unlock()
	ri := RepoInfo{Name: r.name, Kind: r.kind, RootFingerprint: rootSum, SiteTrust: s.siteTrust(r.name, rootSum),
		MetadataURL: s.URL() + "/repos/" + r.name + "/metadata", TargetsURL: s.URL() + "/repos/" + r.name + "/targets"}
	if r.upstreamTU != "" {
		ri.TargetsURL = r.upstreamTU
	}
	ri.TimestampVersion, ri.TimestampExpires = timestampOf(filepath.Join(r.dir, tuf.MetadataDir, "timestamp.json"))
	return ri
}

// timestampOf reads the version and expiry of a timestamp.json, for display
// only: nothing is trusted from it.
func timestampOf(p string) (int64, *time.Time) {
	b, err := capread.File(p, 64<<10)
	if err != nil {
		return 0, nil
	}
	var ts struct {
		Signed struct {
			Version int64     `json:"version"`
			Expires time.Time `json:"expires"`
		} `json:"signed"`
	}
	if err := json.Unmarshal(b, &ts); err != nil {
		return 0, nil
	}
	return ts.Signed.Version, &ts.Signed.Expires
}
