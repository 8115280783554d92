package catalog

import (
	"strings"
	"testing"
)

// Every vendor name that enters Bulwark (repository init, server config,
// approvals, the signed vendor list, enrollment, a server's answers, media)
// goes through CheckVendorName: a name that would be a path is refused.
func TestCheckVendorName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"debian", true}, {"Example-2.0_x", true}, {"a", true}, {strings.Repeat("a", 64), true},
		{"/../../x", false}, {"..", false}, {".", false}, {"../x", false}, {"a/b", false}, {`a\b`, false},
		{"", false}, {"-x", false}, {".hidden", false}, {"a b", false}, {"a\x00", false}, {"é", false},
		{strings.Repeat("a", 65), false},
	} {
		err := CheckVendorName(tc.name)
		if (err == nil) != tc.ok {
			t.Errorf("CheckVendorName(%q) = %v, want ok %v", tc.name, err, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "use 1 to 64 letters") {
			t.Errorf("CheckVendorName(%q): %v does not say what is valid", tc.name, err)
		}
	}
}
