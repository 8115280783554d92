// Package dist holds what Bulwark ships besides the binary: the systemd
// units (dist/systemd) and the Debian packages' nfpm configurations,
// configuration files and maintainer scripts (dist/deb), built by
// scripts/package. It has no Go code of its own; its test builds the
// packages, lints them and installs them into a Debian root.
package dist
