//go:build !agentonly

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/bulwarkhq/bulwark/internal/catalog"
	"github.com/bulwarkhq/bulwark/internal/server"
	"github.com/bulwarkhq/bulwark/internal/tuf"
)

func adminVendorsCmd(o *adminOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "vendors",
		Short: "The site's signed vendor list: which vendor roots agents trust",
		Long: `Agents use a vendor repository only when its first root is the one the site
root's signed vendor list names. The list is part of the site's TUF root, signed
with the site root key, which is kept off the server: the server (and whoever
holds its disk and tokens) cannot add a vendor or change a vendor's root.

trust and untrust read the current site root from the server, check that the
root key files given are its root keys, sign the next root version here (the key
never leaves this machine) and publish it; the server checks it as every agent
will. A root fingerprint is the SHA-256 of the vendor's metadata/1.root.json, as
'bulwark server' and 'bulwark admin status' print it.`,
		Example: `  bulwark admin vendors list
  bulwark admin vendors trust example sha256:… --site-root-key /media/usb/site-root.key
  bulwark admin vendors untrust example --site-root-key /media/usb/site-root.key`,
	}
	var keys []string
	resign := func(cmd *cobra.Command, edit func(map[string]string) error) error {
		if len(keys) == 0 {
			return fmt.Errorf("--site-root-key: give the site root key file (written at the server's first start)")
		}
		c, err := o.client(cmd.InOrStdin(), cmd.ErrOrStderr())
		if err != nil {
			return err
		}
		var cur server.SiteRoot
		if err := c.do(cmd.Context(), "GET", "/api/v1/site/root", nil, &cur); err != nil {
			return err
		}
		next, err := tuf.SignSiteRoot(cur.Root, keys, time.Duration(tuf.DefaultExpiry.Root), time.Now(), edit)
		if err != nil {
			return err
		}
		return o.call(cmd, "PUT", "/api/v1/site/root", server.SiteRootRequest{Root: next}, printSiteRoot)
	}
	trust := &cobra.Command{
		Use:     "trust NAME sha256:<root fingerprint> --site-root-key FILE",
		Example: `  bulwark admin vendors trust example sha256:… --site-root-key /media/usb/site-root.key`,
		Short:   "Sign a new site root that trusts vendor NAME with this first root",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := catalog.CheckVendorName(args[0]); err != nil {
				return err
			}
			fp, err := tuf.ParseRootFingerprint(args[1])
			if err != nil {
				return err
			}
			return resign(cmd, func(v map[string]string) error {
				if old, ok := v[args[0]]; ok && old != fp {
					return fmt.Errorf("vendor %s is trusted with root %s: a vendor root changes only by TUF root rotation signed with its old root; untrust it first if this really is another repository", args[0], old)
				}
				v[args[0]] = fp
				return nil
			})
		},
	}
	untrust := &cobra.Command{
		Use:     "untrust NAME --site-root-key FILE",
		Example: `  bulwark admin vendors untrust example --site-root-key /media/usb/site-root.key`,
		Short:   "Sign a new site root that no longer trusts vendor NAME",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return resign(cmd, func(v map[string]string) error {
				if _, ok := v[args[0]]; !ok {
					return fmt.Errorf("vendor %q is not in the site's signed vendor list", args[0])
				}
				delete(v, args[0])
				return nil
			})
		},
	}
	for _, c := range []*cobra.Command{trust, untrust} {
		c.Flags().StringArrayVar(&keys, "site-root-key", nil, "site root key file (repeat for a root with a threshold above 1)")
	}
	list := &cobra.Command{
		Use: "list",
		Example: `  bulwark admin vendors list
  bulwark admin vendors list -o yaml`,
		Short: "Show the site root's signed vendor list",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.call(cmd, "GET", "/api/v1/site/root", nil, printSiteRoot)
		},
	}
	cmd.AddCommand(list, trust, untrust)
	return cmd
}

func printSiteRoot(w io.Writer, raw []byte) error {
	var sr server.SiteRoot
	if err := json.Unmarshal(raw, &sr); err != nil {
		return err
	}
	fmt.Fprintf(w, "site root version %d (first root %s)\n", sr.Version, sr.Fingerprint)
	if sr.KeyOnServer {
		fmt.Fprintln(w, "WARNING: the site root key is still in the server's data directory; move it off the server")
	}
	rows := [][]string{}
	for _, n := range tuf.SortedVendorNames(sr.Vendors) {
		rows = append(rows, []string{n, sr.Vendors[n]})
	}
	if len(rows) == 0 {
		fmt.Fprintln(w, "no vendor is trusted: agents install nothing")
		return nil
	}
	return table(w, "VENDOR\tROOT", rows)
}
