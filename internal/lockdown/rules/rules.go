// Package rules holds Bulwark's built-in lockdown rules and profiles as YAML
// embedded in the binary. It is data only: it must not parse or interpret
// the files (package lockdown does).
package rules

import "embed"

// FS holds the built-in *.yaml rule and profile files.
//
//go:embed *.yaml
var FS embed.FS
