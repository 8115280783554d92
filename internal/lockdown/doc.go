// Package lockdown audits, applies and undoes hardening profiles on a
// Debian-family root: rules are data (YAML, see package rules), each with one
// resource (sshd option, sysctl key, file mode, key-value line, systemd unit,
// kernel module, package, mount option, nginx directive) that can Check the
// value in force and stage the change that fixes it in a Tree. The Engine
// turns staged changes into an exact diff, journals every path's prior bytes,
// mode, owner and link target before changing it, validates, and undoes a
// run byte for byte.
//
// It must not change anything outside the root it is given, follow a
// symlink out of that root, delete file content (it comments lines out and
// removes only symlinks), or probe or reload the running system unless the
// root is the running system ("/").
package lockdown
