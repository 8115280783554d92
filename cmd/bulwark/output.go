package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"
)

// Output formats every data-printing command takes with -o: text for
// people, json and yaml for scripts. Both data formats carry the same keys
// (the JSON field names), so a script can switch between them.
var outputFormats = []string{"text", "json", "yaml"}

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
	return fmt.Errorf("unknown output format %q; use one of %s", v, strings.Join(o.allowed, ", "))
}

// Data reports whether machine-readable output (json or yaml) was asked for.
func (o *outputFormat) Data() bool { return o.value == "json" || o.value == "yaml" }

// newOutputFormat is an -o value with the given formats (the first is the
// default), outputFormats when none are given.
func newOutputFormat(formats ...string) *outputFormat {
	if len(formats) == 0 {
		formats = outputFormats
	}
	return &outputFormat{value: formats[0], allowed: formats}
}

// outputUsage is the -o flag's help.
func outputUsage(formats []string) string {
	return "output format: " + strings.Join(formats, ", ")
}

// addOutputFlag adds -o/--output to cmd with the given formats (default
// text, json, yaml); the first is the default.
func addOutputFlag(cmd *cobra.Command, formats ...string) *outputFormat {
	o := newOutputFormat(formats...)
	cmd.Flags().VarP(o, "output", "o", outputUsage(o.allowed))
	return o
}

// print writes v in the data format asked for: indented JSON, or YAML with
// the same keys.
func (o *outputFormat) print(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return o.printRaw(w, b)
}

// printRaw writes a JSON document (a server's answer) in the data format
// asked for.
func (o *outputFormat) printRaw(w io.Writer, raw []byte) error {
	if o.value == "yaml" {
		return writeYAML(w, raw)
	}
	var buf bytes.Buffer
	// Valid JSON holds no raw control characters (they are \u escapes),
	// so nothing a server or a file relays reaches the terminal.
	if err := json.Indent(&buf, bytes.TrimSpace(raw), "", "  "); err != nil {
		return fmt.Errorf("not valid JSON: %w", err)
	}
	buf.WriteByte('\n')
	_, err := w.Write(buf.Bytes())
	return err
}

// writeYAML re-encodes a JSON document as YAML. Numbers stay numbers
// (integers exact), and the YAML encoder quotes and escapes every string
// that holds control characters, so YAML is as safe on a terminal as JSON.
func writeYAML(w io.Writer, raw []byte) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return fmt.Errorf("not valid JSON: %w", err)
	}
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(numbers(v)); err != nil {
		return err
	}
	return enc.Close()
}

// numbers replaces json.Number (a string to the YAML encoder, which would
// quote it) with an int64 or a float64.
func numbers(v any) any {
	switch t := v.(type) {
	case json.Number:
		if i, err := t.Int64(); err == nil {
			return i
		}
		if f, err := t.Float64(); err == nil {
			return f
		}
		return t.String()
	case map[string]any:
		for k, e := range t {
			t[k] = numbers(e)
		}
	case []any:
		for i, e := range t {
			t[i] = numbers(e)
		}
	}
	return v
}
