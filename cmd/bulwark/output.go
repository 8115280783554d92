package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

// outputFormat is the value of a command's -o flag.
type outputFormat struct {
	value   string
	allowed []string
}

func (o *outputFormat) String() string { return o.value }
func (o *outputFormat) Type() string   { return "format" }
func (o *outputFormat) Set(v string) error {
	for _, a := range o.allowed {
		if v == a {
			o.value = v
			return nil
		}
	}
	return fmt.Errorf("unknown output format %q; use one of %v", v, o.allowed)
}

// JSON reports whether machine-readable output was asked for.
func (o *outputFormat) JSON() bool { return o.value == "json" }

// addOutputFlag adds -o/--output to cmd with the given formats; the first is
// the default.
func addOutputFlag(cmd *cobra.Command, formats ...string) *outputFormat {
	if len(formats) == 0 {
		formats = []string{"text", "json"}
	}
	o := &outputFormat{value: formats[0], allowed: formats}
	cmd.Flags().VarP(o, "output", "o", fmt.Sprintf("output format: %v", formats))
	return o
}

// printJSON writes v as indented JSON, for scripts.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
