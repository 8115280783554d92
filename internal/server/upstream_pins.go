package server

import (
	"path/filepath"

	"github.com/bulwarkhq/bulwark/internal/tuf"
)

// UpstreamPinsFile, in a server's data directory, holds the root
// fingerprints of the upstream vendors the server was last started with,
// whatever gave them (its configuration file, --upstream-vendor flags,
// BULWARK_* variables). `bulwark media import` into the data directory
// trusts them, so that the first import into a disconnected server
// started with flags only needs the pins no second time.
const UpstreamPinsFile = "upstream-pins.json"

// recordUpstreamPins writes UpstreamPinsFile for the configured upstream
// vendors (or removes it when there are none).
func (s *Server) recordUpstreamPins() error {
	pins := map[string]string{}
	if u := s.cfg.Upstream; u != nil {
		for _, v := range u.Vendors {
			pins[v.Name] = normFingerprint(v.RootFingerprint)
		}
	}
	return tuf.WritePinsFile(filepath.Join(s.cfg.DataDir, UpstreamPinsFile), pins)
}
