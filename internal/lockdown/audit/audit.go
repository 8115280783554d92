// Package audit turns a lockdown report into the audit an agent sends its
// server (wire.LockdownAudit) and checks such an audit on the server's
// side. It sits apart from package lockdown so that the policy and wire
// packages can use lockdown's catalog without an import cycle.
//
// It must not do I/O.
package audit

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/bulwarkhq/bulwark/internal/lockdown"
	"github.com/bulwarkhq/bulwark/internal/wire"
)

// Of summarises a report. passedAfterApply names the rules that
// passed (or were fixed) at the last apply; a rule of it that fails now is
// drift. nil means the profile was never applied: nothing is drift.
func Of(rep *lockdown.Report, source string, appliedAt *time.Time, passedAfterApply map[string]bool) *wire.LockdownAudit {
	c := &wire.LockdownAudit{Profile: rep.Profile, Source: source, AuditedAt: rep.Time, AppliedAt: appliedAt, Score: rep.Score, Rules: []wire.LockdownAuditRule{}}
	for _, r := range rep.Results {
		label := r.Label()
		switch label {
		case lockdown.ResultPass, lockdown.ResultFixed:
			c.Pass++
			continue
		case lockdown.ResultNotApplicable, lockdown.ResultNotChecked:
			c.NotApplicable++
			continue
		case lockdown.ResultWaived:
			c.Waived++
		case lockdown.ResultError:
			c.Errors++
		default:
			c.Fail++
		}
		cr := wire.LockdownAuditRule{ID: r.ID, Title: r.Title, Severity: string(r.Severity), Result: string(label), CIS: r.References.CIS, SSG: r.References.SSG}
		for _, n := range r.References.CISNginx {
			cr.CIS = append(slices.Clone(cr.CIS), "nginx-"+n) // CIS NGINX Benchmark items, told apart from CIS Debian 12's
		}
		if r.Waiver != nil {
			cr.Waiver, cr.WaivedUntil = r.Waiver.Reason, r.Waiver.Expires
		} else if passedAfterApply[r.ID] {
			cr.Drift = true
			c.Drift++
		}
		c.Rules = append(c.Rules, cr)
	}
	return c
}

// Limits of a reported compliance (the server refuses more).
const (
	MaxComplianceRules = 5000
	maxRefs            = 20
)

var refPattern = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$`) })

var complianceSources = []string{"policy", "config", "update"}

func shortText(s string, max int) bool {
	return len(s) <= max && utf8.ValidString(s) && !strings.ContainsAny(s, "\x00\n\r")
}

// Validate checks an audit an agent reports completely; the error
// names the field and says what would be valid.
func Validate(c *wire.LockdownAudit, now time.Time) error {
	if !lockdown.IsID(c.Profile) {
		return fmt.Errorf("lockdown.profile %q: use a profile name (1-100 of a-z 0-9 . _ -)", c.Profile)
	}
	if !slices.Contains(complianceSources, c.Source) {
		return fmt.Errorf("lockdown.source %q: use one of %s", c.Source, strings.Join(complianceSources, ", "))
	}
	if c.AuditedAt.IsZero() || c.AuditedAt.After(now.Add(24*time.Hour)) || c.AuditedAt.Before(now.Add(-10*365*24*time.Hour)) {
		return fmt.Errorf("lockdown.audited_at %s: use the RFC 3339 time of the audit, not in the future", c.AuditedAt.Format(time.RFC3339))
	}
	if c.AppliedAt != nil && (c.AppliedAt.After(now.Add(24*time.Hour)) || c.AppliedAt.Before(now.Add(-10*365*24*time.Hour))) {
		return fmt.Errorf("lockdown.applied_at %s: use the RFC 3339 time of the last apply, not in the future", c.AppliedAt.Format(time.RFC3339))
	}
	if !(c.Score >= 0 && c.Score <= 100) {
		return fmt.Errorf("lockdown.score %v: use a number from 0 to 100", c.Score)
	}
	for _, n := range []struct {
		name string
		v    int
	}{{"pass", c.Pass}, {"fail", c.Fail}, {"waived", c.Waived}, {"errors", c.Errors}, {"notapplicable", c.NotApplicable}, {"drift", c.Drift}} {
		if n.v < 0 || n.v > MaxComplianceRules {
			return fmt.Errorf("lockdown.%s %d: use a count from 0 to %d", n.name, n.v, MaxComplianceRules)
		}
	}
	if !shortText(c.Error, 1000) {
		return fmt.Errorf("lockdown.error: at most 1000 bytes of UTF-8 on one line")
	}
	if len(c.Rules) > MaxComplianceRules {
		return fmt.Errorf("lockdown.rules: %d, over the %d limit", len(c.Rules), MaxComplianceRules)
	}
	if len(c.Rules) != c.Fail+c.Errors+c.Waived {
		return fmt.Errorf("lockdown.rules: %d listed, but fail+errors+waived is %d: list every rule that is not passing", len(c.Rules), c.Fail+c.Errors+c.Waived)
	}
	seen := map[string]bool{}
	drift := 0
	for i, r := range c.Rules {
		switch {
		case !lockdown.IsID(r.ID):
			return fmt.Errorf("lockdown.rules[%d].id %q: use a rule id (1-100 of a-z 0-9 . _ -)", i, r.ID)
		case seen[r.ID]:
			return fmt.Errorf("lockdown.rules[%d].id %q: listed twice", i, r.ID)
		case !shortText(r.Title, 300) || r.Title == "":
			return fmt.Errorf("lockdown.rules[%d].title: 1 to 300 bytes of UTF-8 on one line", i)
		case !slices.Contains([]lockdown.Severity{lockdown.SeverityLow, lockdown.SeverityMedium, lockdown.SeverityHigh}, lockdown.Severity(r.Severity)):
			return fmt.Errorf("lockdown.rules[%d].severity %q: use low, medium or high", i, r.Severity)
		case r.Result != string(lockdown.ResultFail) && r.Result != string(lockdown.ResultError) && r.Result != string(lockdown.ResultWaived):
			return fmt.Errorf("lockdown.rules[%d].result %q: use fail, error or waived (passing rules are only counted)", i, r.Result)
		case len(r.CIS) > maxRefs || len(r.SSG) > maxRefs:
			return fmt.Errorf("lockdown.rules[%d]: at most %d CIS and %d SSG references", i, maxRefs, maxRefs)
		case (r.Result == string(lockdown.ResultWaived)) != (r.Waiver != ""):
			return fmt.Errorf("lockdown.rules[%d]: a waived rule gives its waiver's reason, and only a waived rule does", i)
		case !shortText(r.Waiver, 500) || !shortText(r.WaivedUntil, 10):
			return fmt.Errorf("lockdown.rules[%d]: waiver is at most 500 bytes and waived_until a date YYYY-MM-DD", i)
		case r.Drift && r.Result == string(lockdown.ResultWaived):
			return fmt.Errorf("lockdown.rules[%d]: a waived rule is not drift", i)
		}
		for _, ref := range append(slices.Clone(r.CIS), r.SSG...) {
			if !refPattern().MatchString(ref) {
				return fmt.Errorf("lockdown.rules[%d]: reference %q: use letters, digits, '.', '_', ':' or '-' (such as 5.2.1 or sshd_disable_root_login)", i, ref)
			}
		}
		if r.WaivedUntil != "" {
			if _, err := time.Parse("2006-01-02", r.WaivedUntil); err != nil {
				return fmt.Errorf("lockdown.rules[%d].waived_until %q: use a date YYYY-MM-DD", i, r.WaivedUntil)
			}
		}
		seen[r.ID] = true
		if r.Drift {
			drift++
		}
	}
	if drift != c.Drift {
		return fmt.Errorf("lockdown.drift %d: %d rules are marked drift", c.Drift, drift)
	}
	return nil
}
