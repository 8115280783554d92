package tuf

import (
	"fmt"

	"pault.ag/go/debian/version"

	"github.com/bulwarkhq/bulwark/internal/catalog"
	"github.com/bulwarkhq/bulwark/internal/debpkg"
)

// readDebPayload reads the .deb payload at path of update u (installer type
// deb): a real Debian binary package whose package, version and
// architecture become the payload's deb fields, consistent with u's
// applies_to where a deb rule names the package. Anything else (a text file
// named .deb) is refused, saying what is wrong.
var readDebPayload = readDebPayloadFile // tests stand in for an older release that did not check

func readDebPayloadFile(u *catalog.Update, path string) (*catalog.PayloadDeb, error) {
	info, err := debpkg.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("installer type deb needs a Debian binary package: %v", err)
	}
	d := &catalog.PayloadDeb{Package: info.Name, Version: info.Version, Architecture: info.Arch}
	if err := consistent(u.AppliesTo, d); err != nil {
		return nil, fmt.Errorf("%s %s: %v", d.Package, d.Version, err)
	}
	return d, nil
}

// consistent refuses a deb rule about the payload's package that would
// still hold once the payload is installed: an update whose applies_to says
// version_lt X while it carries a version below X would apply for ever.
// Only rules at the top of applies_to (all must hold) are judged; rules
// under and/or/not express more than one package version can say.
func consistent(rules []catalog.Rule, d *catalog.PayloadDeb) error {
	pv, err := version.Parse(d.Version)
	if err != nil {
		return fmt.Errorf("version %q: %v", d.Version, err)
	}
	for i, r := range rules {
		if r.Deb == nil || r.Deb.Package != d.Package {
			continue
		}
		for _, b := range []struct {
			field, value string
			holds        func(int) bool
		}{
			{"version_lt", r.Deb.VersionLT, func(c int) bool { return c < 0 }},
			{"version_le", r.Deb.VersionLE, func(c int) bool { return c <= 0 }},
		} {
			if b.value == "" {
				continue
			}
			bv, err := version.Parse(b.value)
			if err != nil {
				continue // the catalog validator reports it
			}
			if b.holds(version.Compare(pv, bv)) {
				return fmt.Errorf("applies_to[%d].deb.%s %s still holds once the payload's version %s is installed, so the update would apply for ever: raise the payload or set %s to the payload's version", i, b.field, b.value, d.Version, b.field)
			}
		}
		if r.Deb.Installed != nil && !*r.Deb.Installed {
			return fmt.Errorf("applies_to[%d].deb says %s is not installed, but the update installs it, so it would apply for ever", i, d.Package)
		}
	}
	return nil
}

// payloadDebs lists the deb fields of u's payloads.
func payloadDebs(u *catalog.Update) []catalog.PayloadDeb {
	var out []catalog.PayloadDeb
	for _, p := range u.Payloads {
		if p.Deb != nil {
			out = append(out, *p.Deb)
		}
	}
	return out
}

// checkDebPayload is repo verify's check of a stored .deb payload: a real
// Debian package whose control data match the payload's deb fields.
func checkDebPayload(u *catalog.Update, pl catalog.Payload, path string) error {
	info, err := debpkg.ReadFile(path)
	if err != nil {
		return fmt.Errorf("update %s payload %s: installer type deb needs a Debian binary package: %v", u.ID, pl.File, err)
	}
	if pl.Deb != nil && (pl.Deb.Package != info.Name || pl.Deb.Version != info.Version || pl.Deb.Architecture != info.Arch) {
		return fmt.Errorf("update %s payload %s is %s, but update.json says %s %s %s", u.ID, pl.File, info, pl.Deb.Package, pl.Deb.Version, pl.Deb.Architecture)
	}
	return nil
}
