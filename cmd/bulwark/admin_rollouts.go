//go:build !agentonly

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"

	"github.com/spf13/cobra"

	"github.com/bulwarkhq/bulwark/internal/server"
)

func adminRulesCmd(o *adminOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rules",
		Short: "Automatic approval rules and rings: list, create, delete",
		Long: `Automatic approval rules approve matching updates for a group by themselves.
An update matches when its vendor, product and classification are the ones given
(none given: any) and its severity is at least --min-severity.

Without --after, a matching update is approved --delay after this server indexed
it (0: at once). With --after GROUP the rule is a ring: the update is approved
once it has been approved for install in GROUP for --delay (the soak time),
computers there installed it, and its failure rate there stayed under GROUP's
halt threshold. A rule never overrides an approval or decline an admin made for
the group; it also applies to updates indexed before the rule was made. Every
approval a rule makes is in the audit log (actor server, rule.approve).`,
	}
	var req server.RuleRequest
	create := &cobra.Command{
		Use:   "create GROUP [--min-severity S] [--product P] [--classification C] [--vendor V] [--after GROUP] [--delay 3d] [--deadline-in 7d] [--rollout N]",
		Short: "Create a rule",
		Example: `  bulwark admin rules create canary --product debian-12 --classification security --min-severity critical
  bulwark admin rules create prod --product debian-12 --classification security --min-severity critical --after canary --delay 3d --deadline-in 7d`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req.Group = args[0]
			return o.call(cmd, "POST", "/api/v1/rules", req, func(w io.Writer, raw []byte) error {
				var r server.RuleView
				if err := json.Unmarshal(raw, &r); err != nil {
					return err
				}
				_, err := fmt.Fprintf(w, "Created rule %s: %s.\n", r.ID, r.Text)
				return err
			})
		},
	}
	f := create.Flags()
	f.StringVar(&req.Vendor, "vendor", "", "only this vendor repository's updates")
	f.StringVar(&req.Product, "product", "", "only this product, e.g. debian-12")
	f.StringVar(&req.Classification, "classification", "", "only this classification, e.g. security")
	f.StringVar(&req.MinSeverity, "min-severity", "", "only this severity and above: critical, important, moderate, low")
	f.StringVar(&req.After, "after", "", "ring: approve after the update succeeded in this group")
	f.StringVar(&req.Delay, "delay", "", "wait this long after indexing (or, with --after, after the approval there), e.g. 3d")
	f.StringVar(&req.DeadlineIn, "deadline-in", "", "give each approval a deadline this long after it is made, e.g. 7d")
	f.IntVar(&req.Rollout, "rollout", 100, "rollout percentage of each approval, 1 to 100")
	cmd.AddCommand(
		&cobra.Command{
			Use: "list", Short: "List rules", Args: cobra.NoArgs,
			Example: `  bulwark admin rules list
  bulwark admin rules list -o json`,
			RunE: func(cmd *cobra.Command, args []string) error {
				return o.call(cmd, "GET", "/api/v1/rules", nil, listTable("rules", "ID\tGROUP\tRULE\tBY", func(x server.RuleView) []string {
					return []string{x.ID, x.Group, x.Text, x.CreatedBy}
				}))
			},
		},
		create,
		o.deleteByID("delete", "Delete a rule (approvals it made stay)", "bulwark admin rules delete rule-abcdefghijklmnop", "/api/v1/rules/", "Deleted rule "),
	)
	return cmd
}

func adminRolloutsCmd(o *adminOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rollouts",
		Short: "Rollouts of install approvals: results, halts, resume, halt thresholds",
		Long: `Every install approval is a rollout in its group. A rollout halts itself when
more than the group's threshold of its results failed (default: more than 20% of
at least 3 results): the update leaves the group's signed approvals, so no more
computers start installing it, and the halt is in the audit log. Resume puts it
back; failures before the resume no longer count.`,
	}
	var halted bool
	list := &cobra.Command{
		Use: "list [--halted]", Short: "List rollouts with their results, halts and failing computers", Args: cobra.NoArgs,
		Example: `  bulwark admin rollouts list
  bulwark admin rollouts list --halted -o json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			p := "/api/v1/rollouts"
			if halted {
				p += "?state=halted"
			}
			return o.call(cmd, "GET", p, nil, func(w io.Writer, raw []byte) error {
				var r struct{ Rollouts []server.Rollout }
				if err := json.Unmarshal(raw, &r); err != nil {
					return err
				}
				var rows [][]string
				for _, x := range r.Rollouts {
					state := "running"
					if x.Halted {
						state = "HALTED: " + x.Reason
					}
					rows = append(rows, []string{x.Group, x.Vendor + "/" + x.UpdateID, fmt.Sprint(x.Rollout) + "%", fmt.Sprint(x.Installed), fmt.Sprint(x.Failed),
						fmt.Sprintf(">%d%% of %d", x.Threshold.FailedPercent, x.Threshold.MinResults), state})
				}
				if err := table(w, "GROUP\tUPDATE\tROLLOUT\tINSTALLED\tFAILED\tHALTS AT\tSTATE", rows); err != nil {
					return err
				}
				for _, x := range r.Rollouts {
					for _, c := range x.Failing {
						fmt.Fprintf(w, "  %s %s/%s failed on %s (%s): %s\n", x.Group, x.Vendor, x.UpdateID, c.Hostname, c.ID, c.Reason)
					}
				}
				return nil
			})
		},
	}
	list.Flags().BoolVar(&halted, "halted", false, "only halted rollouts")
	var th server.ThresholdRequest
	thCmd := &cobra.Command{
		Use: "threshold GROUP --failed-percent N --min-results M", Short: "Set when a group's rollouts halt", Args: cobra.ExactArgs(1),
		Example: `  bulwark admin rollouts threshold canary --failed-percent 0 --min-results 1   # halt at the first failure
  bulwark admin rollouts threshold web --failed-percent 10 --min-results 20`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.call(cmd, "PUT", "/api/v1/groups/"+url.PathEscape(args[0])+"/halt-threshold", th,
				say(fmt.Sprintf("Rollouts in %s halt when more than %d%% of at least %d results failed.", args[0], th.FailedPercent, th.MinResults)))
		},
	}
	thCmd.Flags().IntVar(&th.FailedPercent, "failed-percent", server.DefaultHaltThreshold.FailedPercent, "halt when more than this percentage of results failed (0: at the first failure)")
	thCmd.Flags().IntVar(&th.MinResults, "min-results", server.DefaultHaltThreshold.MinResults, "only once at least this many computers reported a result")
	cmd.AddCommand(list,
		&cobra.Command{
			Use: "resume GROUP VENDOR/ID", Short: "Resume a halted rollout (a running one stays as it is)", Args: cobra.ExactArgs(2),
			Example: `  bulwark admin rollouts resume canary debian/BW-2026-0042`,
			RunE: func(cmd *cobra.Command, args []string) error {
				v, id, err := splitUpdate(args[1])
				if err != nil {
					return err
				}
				return o.call(cmd, "POST", "/api/v1/rollouts/"+url.PathEscape(args[0])+"/"+url.PathEscape(v)+"/"+url.PathEscape(id)+"/resume", nil,
					say(fmt.Sprintf("Resumed the rollout of %s in %s; approvals/%s.json re-signed.", args[1], args[0], args[0])))
			},
		},
		thCmd,
	)
	return cmd
}
