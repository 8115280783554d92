//go:build !agentonly

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/spf13/cobra"

	"github.com/bulwarkhq/bulwark/internal/policy"
	"github.com/bulwarkhq/bulwark/internal/server"
)

func adminGroupPolicyCmd(o *adminOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "A group's central policy, delivered to its agents at check-in: show, set",
		Long: `A computer group's central policy: the agent settings (mode, auto-install
severity, maintenance window, check-in interval, bandwidth limit, download mode)
that every agent of the group receives at its next check-in.

Precedence, setting by setting: a setting the policy leaves unset comes from the
machine's agent.yaml (or its default); a setting the policy sets wins over
agent.yaml, unless the policy lists it in --allow-local and agent.yaml sets it.
A lockdown profile (--lockdown-profile, with --lockdown-waiver) is kept applied
by every agent of the group: applied after enrollment, rules an install brings
into scope applied at the next cycle, waived rules never applied, drift reported
(` + "`bulwark admin lockdown group GROUP`" + `). Each change is in the audit log. ` + "`bulwark agent status`" + ` on a machine shows where
each setting in effect comes from.

Settings (the agent.yaml keys):
` + policyHelp(),
	}
	cmd.AddCommand(
		&cobra.Command{
			Use: "show GROUP", Short: "Show a group's policy", Args: cobra.ExactArgs(1),
			Example: `  bulwark admin groups policy show web
  bulwark admin groups policy show web -o yaml`,
			RunE: func(cmd *cobra.Command, args []string) error {
				return o.call(cmd, "GET", policyPath(args[0]), nil, printPolicy)
			},
		},
		adminPolicySetCmd(o),
	)
	return cmd
}

func policyHelp() string {
	var b strings.Builder
	for _, f := range policy.Fields {
		fmt.Fprintf(&b, "  %-22s %s\n", f.Key, f.Help)
	}
	return b.String()
}

func policyPath(group string) string { return "/api/v1/groups/" + url.PathEscape(group) + "/policy" }

func flagName(key string) string { return strings.ReplaceAll(key, "_", "-") }

func adminPolicySetCmd(o *adminOptions) *cobra.Command {
	values := map[string]*string{}
	var unset, allowLocal, waivers []string
	var clear, noAllowLocal, noWaivers bool
	var lockdownProfile string
	cmd := &cobra.Command{
		Use:   "set GROUP [--SETTING VALUE]... [--unset SETTING]... [--allow-local SETTING,...] [--clear]",
		Short: "Change a group's policy: settings given change, the rest stay",
		Example: `  bulwark admin groups policy set web --mode scheduled --maintenance-window "sat,sun 02:00-05:00" --auto-install-severity important
  bulwark admin groups policy set web --detection-interval 4h --bandwidth-limit 2mbit --allow-local bandwidth_limit
  bulwark admin groups policy set web --unset bandwidth_limit
  bulwark admin groups policy set web --clear     # agents follow agent.yaml alone again`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client(cmd.InOrStdin(), cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			var cur server.GroupPolicyAnswer
			if err := c.do(cmd.Context(), "GET", policyPath(args[0]), nil, &cur); err != nil {
				return err
			}
			p := cur.Policy
			if clear {
				p = policy.Group{}
			}
			for _, k := range unset {
				if k == "lockdown" {
					continue // setPolicyLockdown
				}
				if err := p.Set(k, ""); err != nil {
					return fmt.Errorf("--unset: %w", err)
				}
			}
			for _, f := range policy.Fields {
				if cmd.Flags().Changed(flagName(f.Key)) {
					if err := p.Set(f.Key, *values[f.Key]); err != nil {
						return fmt.Errorf("--%s: %w", flagName(f.Key), err)
					}
				}
			}
			if cmd.Flags().Changed("allow-local") {
				p.AllowLocal = allowLocal
			}
			if noAllowLocal {
				p.AllowLocal = nil
			}
			if err := setPolicyLockdown(cmd, &p, unset, lockdownProfile, waivers, noWaivers); err != nil {
				return err
			}
			if err := p.Check(); err != nil {
				return err
			}
			return o.call(cmd, "PUT", policyPath(args[0]), p, printPolicy)
		},
	}
	fl := cmd.Flags()
	for _, f := range policy.Fields {
		values[f.Key] = new(string)
		fl.StringVar(values[f.Key], flagName(f.Key), "", f.Help)
	}
	fl.StringSliceVar(&unset, "unset", nil, "leave this setting to agent.yaml (repeatable or comma-separated)")
	fl.StringSliceVar(&allowLocal, "allow-local", nil, "settings agent.yaml may override, comma-separated (replaces the list)")
	fl.BoolVar(&noAllowLocal, "no-allow-local", false, "agent.yaml may override nothing the policy sets")
	fl.BoolVar(&clear, "clear", false, "start from an empty policy")
	fl.StringVar(&lockdownProfile, "lockdown-profile", "", "a lockdown profile the group's agents keep applied (see bulwark lockdown list); --unset lockdown removes it")
	fl.StringArrayVar(&waivers, "lockdown-waiver", nil, `waive a rule of the profile: "RULE until YYYY-MM-DD: reason" (repeatable; adds to or replaces the rule's waiver)`)
	fl.BoolVar(&noWaivers, "no-lockdown-waivers", false, "remove every lockdown waiver")
	return cmd
}

// printPolicy shows a policy answer as a table: every setting, its value
// or "(agent.yaml)", and whether agent.yaml may override it.
func printPolicy(w io.Writer, raw []byte) error {
	var a server.GroupPolicyAnswer
	if err := json.Unmarshal(raw, &a); err != nil {
		return err
	}
	var rows [][]string
	for _, f := range policy.Fields {
		v := a.Policy.Value(f.Key)
		if v == "" {
			v = "(agent.yaml)"
		}
		override := "no"
		if a.Policy.Allows(f.Key) || a.Policy.Value(f.Key) == "" {
			override = "yes"
		}
		rows = append(rows, []string{f.Key, v, override})
	}
	fmt.Fprintf(w, "Group %s policy", a.Group)
	if !a.UpdatedAt.IsZero() {
		fmt.Fprintf(w, " (changed %s by %s)", fmtTime(&a.UpdatedAt), a.UpdatedBy)
	}
	fmt.Fprintln(w, ":")
	if l := a.Policy.Lockdown; l != nil {
		rows = append(rows, []string{"lockdown", l.Profile + " (kept applied)", "no"})
		for _, wv := range l.Waivers {
			rows = append(rows, []string{"  waiver", wv.Rule + " until " + wv.Expires + ": " + wv.Reason, "no"})
		}
	} else {
		rows = append(rows, []string{"lockdown", "(none)", "audit only (lockdown_profile)"})
	}
	return table(w, "SETTING\tVALUE\tAGENT.YAML DECIDES", rows)
}

// setPolicyLockdown applies the lockdown flags of policy set to p.
func setPolicyLockdown(cmd *cobra.Command, p *policy.Group, unset []string, profile string, waivers []string, noWaivers bool) error {
	for _, k := range unset {
		if k == "lockdown" {
			p.Lockdown = nil
		}
	}
	if cmd.Flags().Changed("lockdown-profile") {
		if p.Lockdown == nil {
			p.Lockdown = &policy.Lockdown{}
		}
		p.Lockdown.Profile = profile
	}
	if (len(waivers) > 0 || noWaivers) && p.Lockdown == nil {
		return fmt.Errorf("--lockdown-waiver: the group's policy names no lockdown profile; give --lockdown-profile too")
	}
	if noWaivers {
		p.Lockdown.Waivers = nil
	}
	for _, s := range waivers {
		w, err := policy.ParseWaiverFlag(s)
		if err != nil {
			return fmt.Errorf("--lockdown-waiver: %w", err)
		}
		ws := p.Lockdown.Waivers[:0:0]
		for _, o := range p.Lockdown.Waivers {
			if o.Rule != w.Rule {
				ws = append(ws, o)
			}
		}
		p.Lockdown.Waivers = append(ws, w)
	}
	return nil
}
