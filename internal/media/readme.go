package media

import (
	"bytes"
	"fmt"
	"strings"
)

// Readme is the plain-text README.txt for the person holding the media. It
// depends only on the manifest's content, so it is the same for the same
// inputs.
func Readme(m *Manifest) []byte {
	var b bytes.Buffer
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	p("BULWARK OFFLINE MEDIA")
	p("=====================")
	p("")
	p("These media carry signed security updates for machines that cannot reach an")
	p("update server. Nothing on them is trusted because it is on them: every file")
	p("is checked against the vendor's signing root that your server or machine")
	p("already trusts. Compare this fingerprint with the one your vendor publishes")
	p("before you use the media:")
	p("")
	for _, v := range m.Vendors {
		p("  vendor %-12s root %s", v.Name, v.RootFingerprint)
	}
	if m.Site != nil {
		p("  site approvals      root %s  (groups: %s)", m.Site.RootFingerprint, strings.Join(m.Site.Groups, ", "))
	}
	p("")
	p("WHAT IS ON THEM")
	p("")
	for _, v := range m.Vendors {
		var total int64
		for _, u := range v.Updates {
			total += u.Bytes
		}
		p("%s: %d updates, %s of payloads (metadata version %d)", v.Name, len(v.Updates), humanBytes(total), v.TimestampVersion)
		for _, u := range v.Updates {
			p("  %-24s %-10s %-9s %s  %s", u.ID, u.Severity, u.Classification, u.Released, u.Title)
		}
		p("")
	}
	p("Lockdown rules and profiles: %d files in %s/.", len(m.Lockdown), LockdownDir)
	p("")
	p("HOW TO USE THEM (replace MEDIA with this directory or the .iso file)")
	p("")
	p("1. Check them, on any machine with bulwark, against the vendor's fingerprint:")
	p("     bulwark media verify MEDIA --vendor NAME=sha256:...")
	p("")
	p("2. On a disconnected update server (it must already trust the vendor):")
	p("     bulwark media import MEDIA --data-dir /var/lib/bulwark")
	p("")
	p("3. On a lone machine with no server, install every update that applies,")
	p("   in one pass with at most one reboot, then harden it:")
	p("     bulwark agent install --from-media MEDIA --vendor NAME=sha256:...")
	p("     bulwark lockdown apply --profile end-user --rules MEDIA/%s", LockdownDir)
	p("")
	p("MANIFEST.json lists every file with its length and SHA-256. See docs/MEDIA.md")
	p("in the Bulwark source for the whole walk-through.")
	return b.Bytes()
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}
