package lockdown

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// ParseWaiver checks a waiver given outside a profile file (a group's
// policy): it names a rule, gives a reason and an expiry date YYYY-MM-DD
// (the waiver holds through that day, UTC).
func ParseWaiver(rule, reason, expires string) (Waiver, error) {
	if !idPattern().MatchString(rule) {
		return Waiver{}, fmt.Errorf("waiver rule %q: use a rule id (1-100 of a-z 0-9 . _ -), as `bulwark lockdown list` shows", rule)
	}
	if strings.TrimSpace(reason) == "" || len(reason) > 500 || strings.ContainsAny(reason, "\x00\n\r") {
		return Waiver{}, fmt.Errorf("waiver of %s: give a reason of 1 to 500 characters on one line", rule)
	}
	d, err := time.Parse("2006-01-02", expires)
	if err != nil {
		return Waiver{}, fmt.Errorf("waiver of %s: expires %q is not a date YYYY-MM-DD", rule, expires)
	}
	return Waiver{Rule: rule, Reason: reason, Expires: expires, expires: d.AddDate(0, 0, 1)}, nil
}

// Waive adds waivers to a selection (over the profile's own for the same
// rule). A waiver of a rule the profile does not select is an error naming
// it; an expired one is kept as ExpiredWaiver and waives nothing.
func (s *Selection) Waive(ws []Waiver, now time.Time) error {
	var errs []error
	for i := range ws {
		w := ws[i]
		if w.expires.IsZero() {
			var err error
			if w, err = ParseWaiver(w.Rule, w.Reason, w.Expires); err != nil {
				errs = append(errs, err)
				continue
			}
		}
		found := false
		for j := range s.Rules {
			r := &s.Rules[j]
			if r.Rule.ID != w.Rule {
				continue
			}
			found = true
			if now.Before(w.expires) {
				r.Waiver, r.ExpiredWaiver = &w, nil
			} else {
				r.ExpiredWaiver = &w
			}
		}
		if !found {
			errs = append(errs, fmt.Errorf("waiver of %s: profile %s has no such rule", w.Rule, s.Profile.Name))
		}
	}
	return errors.Join(errs...)
}
