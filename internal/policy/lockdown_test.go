package policy

import (
	"strings"
	"testing"
)

// A group's lockdown setting names a built-in profile and waives only
// rules of that profile, each once, with a reason and a date.
func TestLockdownCheck(t *testing.T) {
	ok := Group{Lockdown: &Lockdown{Profile: "sysadmin", Waivers: []Waiver{{Rule: "login-umask", Reason: "build farm needs 022", Expires: "2027-03-31"}}}}
	if err := ok.Check(); err != nil || ok.Empty() {
		t.Fatalf("valid lockdown policy: %v (empty %v)", err, ok.Empty())
	}
	if ws := ok.Lockdown.LockdownWaivers(); len(ws) != 1 || ws[0].Rule != "login-umask" {
		t.Fatalf("waivers = %+v", ws)
	}
	for _, tc := range []struct {
		l    Lockdown
		want string
	}{
		{Lockdown{Profile: "paranoid"}, `lockdown.profile "paranoid": use one of end-user, small-business, sysadmin, web-server`},
		{Lockdown{Profile: "sysadmin", Waivers: []Waiver{{Rule: "login-umask", Expires: "2027-03-31"}}}, "give a reason"},
		{Lockdown{Profile: "sysadmin", Waivers: []Waiver{{Rule: "login-umask", Reason: "r", Expires: "soon"}}}, "is not a date"},
		{Lockdown{Profile: "small-business", Waivers: []Waiver{{Rule: "nginx-server-tokens", Reason: "r", Expires: "2027-01-01"}}}, "has no such rule"},
		{Lockdown{Profile: "sysadmin", Waivers: []Waiver{{Rule: "login-umask", Reason: "r", Expires: "2027-01-01"}, {Rule: "login-umask", Reason: "r", Expires: "2027-01-01"}}}, "waived twice"},
	} {
		g := Group{Lockdown: &tc.l}
		if err := g.Check(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.l, err, tc.want)
		}
	}
	w, err := ParseWaiverFlag("login-umask until 2027-03-31: the build farm needs 022")
	if err != nil || w != (Waiver{Rule: "login-umask", Expires: "2027-03-31", Reason: "the build farm needs 022"}) {
		t.Fatalf("ParseWaiverFlag = %+v, %v", w, err)
	}
	if _, err := ParseWaiverFlag("login-umask: no date"); err == nil || !strings.Contains(err.Error(), "RULE until YYYY-MM-DD: reason") {
		t.Fatalf("bad waiver flag: %v", err)
	}
}
