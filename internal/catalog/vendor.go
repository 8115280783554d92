package catalog

import (
	"fmt"
	"regexp"
	"sync"
)

var vendorNamePattern = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`) })

// CheckVendorName is the one check of a vendor repository name, wherever a
// name enters: repository init, server configuration, approvals, the site's
// signed vendor list, an agent's enrollment and every answer of a server.
// A name becomes a directory and a URL path component, so it is 1 to 64
// letters, digits, '.', '_' or '-', starting with a letter or digit (no '/',
// no "..").
func CheckVendorName(name string) error {
	if !vendorNamePattern().MatchString(name) {
		return fmt.Errorf("vendor name %q: use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit", name)
	}
	return nil
}
