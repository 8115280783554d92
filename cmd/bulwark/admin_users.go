//go:build !agentonly

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/bulwarkhq/bulwark/internal/capread"
	"github.com/bulwarkhq/bulwark/internal/server"
	"github.com/bulwarkhq/bulwark/internal/store"
)

func adminUsersCmd(o *adminOptions) *cobra.Command {
	cmd := &cobra.Command{Use: "users", Short: "Console users: list, create, set-role, disable, enable, reset-password"}
	list := &cobra.Command{
		Use: "list", Short: "List console users", Args: cobra.NoArgs,
		Example: `  bulwark admin users list`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.call(cmd, "GET", "/api/v1/users", nil, listTable("users", "NAME\tROLE\tSTATE\tCREATED", func(u store.User) []string {
				state := "enabled"
				switch {
				case u.DisabledAt != nil:
					state = "disabled " + fmtTime(u.DisabledAt)
				case u.MustChange:
					state = "must change password"
				}
				return []string{u.Name, u.Role, state, fmtTime(&u.CreatedAt)}
			}))
		},
	}
	var role, pwFile string
	create := &cobra.Command{
		Use: "create NAME", Short: "Create a console user (password from --password-file, or asked on the terminal)", Args: cobra.ExactArgs(1),
		Example: "  bulwark admin users create alice --role approver --password-file alice.pw",
		RunE: func(cmd *cobra.Command, args []string) error {
			pw, err := readPassword(cmd, pwFile)
			if err != nil {
				return err
			}
			req := server.UserRequest{Name: args[0], Role: role, Password: pw}
			return o.call(cmd, "POST", "/api/v1/users", req, say("Created user "+args[0]+" ("+role+")."))
		},
	}
	create.Flags().StringVar(&role, "role", "viewer", "viewer, approver or admin")
	create.Flags().StringVar(&pwFile, "password-file", "", "read the password from this file (first line)")
	setRole := &cobra.Command{
		Use: "set-role NAME ROLE", Short: "Change a user's role (viewer, approver or admin); it counts from the user's next request", Args: cobra.ExactArgs(2),
		Example: "  bulwark admin users set-role alice admin",
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.call(cmd, "PATCH", "/api/v1/users/"+url.PathEscape(args[0]), server.UserChange{Role: args[1]},
				say("User "+args[0]+" is now "+args[1]+"."))
		},
	}
	access := func(use, short string, off bool, done string) *cobra.Command {
		return &cobra.Command{
			Use: use + " NAME", Short: short, Args: cobra.ExactArgs(1),
			Example: "  bulwark admin users " + use + " alice",
			RunE: func(cmd *cobra.Command, args []string) error {
				return o.call(cmd, "PATCH", "/api/v1/users/"+url.PathEscape(args[0]), server.UserChange{Disabled: &off},
					say("User "+args[0]+" "+done+"."))
			},
		}
	}
	disable := access("disable", "Disable a user: its sessions end and it cannot sign in (the last enabled admin cannot be disabled)", true, "is disabled")
	enable := access("enable", "Enable a disabled user", false, "is enabled")
	var resetFile string
	reset := &cobra.Command{
		Use:   "reset-password NAME",
		Short: "Give a user a temporary password it must change at the next sign-in (random unless --password-file); its sessions end",
		Long: `Give a user a temporary password, which the user must replace at the next
sign-in; every session of the user ends. Without --password-file the server
makes a random one and it is printed once (it is stored only as a hash).`,
		Example: "  bulwark admin users reset-password alice\n  bulwark admin users reset-password alice --password-file temp.pw",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var req server.PasswordReset
			if resetFile != "" {
				pw, err := readPassword(cmd, resetFile)
				if err != nil {
					return err
				}
				req.Password = pw
			}
			return o.call(cmd, "POST", "/api/v1/users/"+url.PathEscape(args[0])+"/password", req, func(w io.Writer, raw []byte) error {
				var r server.PasswordResetResponse
				if err := json.Unmarshal(raw, &r); err != nil {
					return err
				}
				if resetFile != "" {
					_, err := fmt.Fprintf(w, "Password of %s reset; they must change it at the next sign-in.\n", r.User)
					return err
				}
				_, err := fmt.Fprintf(w, "Temporary password of %s (shown once; they must change it at the next sign-in): %s\n", r.User, r.Password)
				return err
			})
		},
	}
	reset.Flags().StringVar(&resetFile, "password-file", "", "read the temporary password from this file (first line) instead of making one")
	cmd.AddCommand(list, create, setRole, disable, enable, reset)
	return cmd
}

// readPassword reads a password from a file or, on a terminal, without echo.
func readPassword(cmd *cobra.Command, file string) (string, error) {
	if file != "" {
		b, err := capread.File(file, 4096)
		if err != nil {
			return "", fmt.Errorf("password file: %w", err)
		}
		line, _, _ := strings.Cut(string(b), "\n")
		return strings.TrimRight(line, "\r"), nil
	}
	if !term.IsTerminal(int(os.Stdin.Fd())) {
		return "", fmt.Errorf("give --password-file FILE: standard input is not a terminal to ask on")
	}
	fmt.Fprint(cmd.ErrOrStderr(), "Password (12 characters to 1024 bytes): ")
	b, err := term.ReadPassword(int(os.Stdin.Fd()))
	fmt.Fprintln(cmd.ErrOrStderr())
	return string(b), err
}

func adminAuditCmd(o *adminOptions) *cobra.Command {
	var before string
	var limit int
	cmd := &cobra.Command{
		Use: "audit", Short: "The audit log: every admin action in the console and the API, newest first", Args: cobra.NoArgs,
		Example: `  bulwark admin audit --limit 20
  bulwark admin audit --before 1234 -o json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			q := url.Values{"limit": {fmt.Sprint(limit)}}
			if before != "" {
				q.Set("before", before)
			}
			return o.call(cmd, "GET", "/api/v1/audit?"+q.Encode(), nil, func(w io.Writer, raw []byte) error {
				var r struct {
					Entries []store.AuditEntry
					Next    string
				}
				if err := json.Unmarshal(raw, &r); err != nil {
					return err
				}
				var rows [][]string
				for _, e := range r.Entries {
					rows = append(rows, []string{fmtTime(&e.At), e.Actor, e.Via, e.Action, e.Target, e.Remote, e.Detail})
				}
				if err := table(w, "WHEN\tWHO\tVIA\tWHAT\tTARGET\tFROM\tDETAIL", rows); err != nil {
					return err
				}
				if r.Next != "" {
					fmt.Fprintf(cmd.ErrOrStderr(), "Older entries: --before %s\n", r.Next)
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&before, "before", "", "show entries older than this id (the cursor printed after a full page)")
	cmd.Flags().IntVar(&limit, "limit", 100, "entries per page, 1 to 1000")
	return cmd
}
