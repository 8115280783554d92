// Package version reports the version of this build of Bulwark. It holds no
// other state and must not import anything from the rest of the project.
package version

import "runtime/debug"

// Version is set at link time with -ldflags "-X .../internal/version.Version=v1.2.3".
var Version = ""

// String returns the release version, or the module and VCS revision the
// binary was built from when no release version was stamped in.
func String() string {
	if Version != "" {
		return Version
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	v := info.Main.Version
	if v == "" || v == "(devel)" {
		v = "devel"
	}
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			v += "+" + s.Value[:12]
		}
	}
	return v
}
