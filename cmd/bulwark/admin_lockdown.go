//go:build !agentonly

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/spf13/cobra"

	"github.com/bulwarkhq/bulwark/internal/store"
)

func adminLockdownCmd(o *adminOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "lockdown",
		Short: "Lockdown compliance the agents report: per computer and per group",
		Long: `Each agent audits its lockdown profile at every cycle (the one its group's
policy keeps applied, or agent.yaml's lockdown_profile, or the profile of the
lockdown update it installed last) and reports the score and every rule that is
not passing, with its CIS and SSG references. Drift is a rule that passed after
the agent's last apply and fails now; a waived rule is neither applied nor
counted as failing.`,
		Example: `  bulwark admin lockdown computer agt-3k9x2m7q1z
  bulwark admin lockdown group web -o json`,
	}
	cmd.AddCommand(
		&cobra.Command{
			Use: "computer ID", Short: "A computer's last audit: score, counts, the rules not passing", Args: cobra.ExactArgs(1),
			Example: "  bulwark admin lockdown computer agt-3k9x2m7q1z\n  bulwark admin lockdown computer agt-3k9x2m7q1z -o json",
			RunE: func(cmd *cobra.Command, args []string) error {
				return o.call(cmd, "GET", "/api/v1/computers/"+url.PathEscape(args[0])+"/lockdown", nil, func(w io.Writer, raw []byte) error {
					var l store.LockdownStatus
					if err := json.Unmarshal(raw, &l); err != nil {
						return err
					}
					fmt.Fprintf(w, "%s %s group=%s profile=%s (%s) score %.1f: %d pass, %d fail, %d waived, %d errors, %d not applicable, %d drift\n",
						l.AgentID, l.Hostname, l.Group, l.Profile, l.Source, l.Score, l.Pass, l.Fail, l.Waived, l.Errors, l.NotApplicable, l.Drift)
					fmt.Fprintf(w, "audited %s, last applied %s\n", fmtTime(&l.AuditedAt), fmtTime(l.AppliedAt))
					if l.Error != "" {
						fmt.Fprintf(w, "error: %s\n", l.Error)
					}
					var rows [][]string
					for _, r := range l.Rules {
						res := r.Result
						if r.Drift {
							res += " (drift)"
						}
						if r.Waiver != "" {
							res += " until " + r.WaivedUntil + ": " + r.Waiver
						}
						rows = append(rows, []string{r.ID, r.Severity, res, refList(r), r.Title})
					}
					return table(w, "RULE\tSEVERITY\tRESULT\tREFERENCES\tTITLE", rows)
				})
			},
		},
		&cobra.Command{
			Use: "group GROUP", Short: "A group's compliance: computers reporting and compliant, scores, the rules failing on most computers", Args: cobra.ExactArgs(1),
			Example: "  bulwark admin lockdown group web\n  bulwark admin lockdown group web -o yaml",
			RunE: func(cmd *cobra.Command, args []string) error {
				return o.call(cmd, "GET", "/api/v1/groups/"+url.PathEscape(args[0])+"/lockdown", nil, func(w io.Writer, raw []byte) error {
					var g store.GroupLockdown
					if err := json.Unmarshal(raw, &g); err != nil {
						return err
					}
					fmt.Fprintf(w, "group %s: %d computers, %d reporting, %d compliant, %d with drift; score average %.1f, lowest %.1f\n\n",
						g.Group, g.Computers, g.Reporting, g.Compliant, g.Drifted, g.AvgScore, g.MinScore)
					var rows [][]string
					for _, r := range g.Rules {
						rows = append(rows, []string{r.ID, r.Severity, r.Result, fmt.Sprint(r.Computers), refList(r), r.Title})
					}
					if err := table(w, "RULE\tSEVERITY\tRESULT\tCOMPUTERS\tREFERENCES\tTITLE", rows); err != nil {
						return err
					}
					fmt.Fprintln(w)
					rows = nil
					for _, m := range g.Members {
						rows = append(rows, []string{m.AgentID, m.Hostname, m.Profile, fmt.Sprintf("%.1f", m.Score),
							fmt.Sprintf("%d/%d/%d", m.Fail, m.Waived, m.Drift), fmtTime(&m.AuditedAt), m.Error})
					}
					return table(w, "COMPUTER\tHOSTNAME\tPROFILE\tSCORE\tFAIL/WAIVED/DRIFT\tAUDITED\tERROR", rows)
				})
			},
		},
	)
	return cmd
}

// refList shows a rule's references: CIS item numbers, then SSG rule ids.
func refList(r store.LockdownRule) string {
	var refs []string
	for _, c := range r.CIS {
		refs = append(refs, "CIS "+c)
	}
	refs = append(refs, r.SSG...)
	return strings.Join(refs, " ")
}
