package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/bulwarkhq/bulwark/internal/config"
	"github.com/bulwarkhq/bulwark/internal/termtext"
)

// printSettings shows layered settings: a KEY VALUE FROM table, or the
// list itself with -o json|yaml.
func printSettings(w io.Writer, out *outputFormat, vals []config.Value) error {
	if out.Data() {
		return out.print(w, vals)
	}
	tw := tabwriter.NewWriter(termtext.NewWriter(w), 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY\tVALUE\tFROM")
	for _, v := range vals {
		from := v.From
		if from == "" {
			from = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", v.Key, termtext.Escape(showValue(v.Value)), termtext.Escape(from))
	}
	return tw.Flush()
}

// showValue prints a setting's value on one line.
func showValue(v any) string {
	switch x := v.(type) {
	case nil:
		return "-"
	case string:
		if x == "" {
			return `""`
		}
		return x
	case []string:
		return "[" + strings.Join(x, ", ") + "]"
	case []any:
		var items []string
		for _, e := range x {
			items = append(items, showValue(e))
		}
		return "[" + strings.Join(items, ", ") + "]"
	case map[string]any:
		var items []string
		for k, e := range x {
			items = append(items, k+": "+showValue(e))
		}
		sort.Strings(items)
		return "{" + strings.Join(items, ", ") + "}"
	}
	return fmt.Sprint(v)
}
