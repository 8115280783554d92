package policy

import (
	"reflect"
	"strings"
	"testing"
)

func TestResolvePrecedence(t *testing.T) {
	for _, tc := range []struct {
		name            string
		group           *Group
		local           map[string]string
		wantVal, wantBy string
	}{
		{"no group policy: agent.yaml", nil, map[string]string{"mode": "auto"}, "auto", FromLocal},
		{"neither: default", nil, nil, "", FromDefault},
		{"group sets, agent.yaml silent", &Group{Mode: "notify"}, nil, "notify", FromGroup},
		{"group sets, agent.yaml differs, not allowed: group wins", &Group{Mode: "notify"}, map[string]string{"mode": "auto"}, "notify", FromGroup},
		{"group sets, allowed, agent.yaml sets: agent.yaml wins", &Group{Mode: "notify", AllowLocal: []string{"mode"}}, map[string]string{"mode": "auto"}, "auto", FromLocal},
		{"group sets, allowed, agent.yaml silent: group", &Group{Mode: "notify", AllowLocal: []string{"mode"}}, nil, "notify", FromGroup},
		{"group silent: agent.yaml even when not allowed", &Group{BandwidthLimit: "2mbit"}, map[string]string{"mode": "auto"}, "auto", FromLocal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, from := Resolve(tc.group, tc.local)
			if v["mode"] != tc.wantVal || from["mode"] != tc.wantBy {
				t.Fatalf("mode = %q from %s, want %q from %s", v["mode"], from["mode"], tc.wantVal, tc.wantBy)
			}
			if len(from) != len(Fields) {
				t.Fatalf("from names %d settings, want all %d", len(from), len(Fields))
			}
		})
	}
}

func TestGroupCheck(t *testing.T) {
	for _, tc := range []struct {
		name string
		g    Group
		want string
	}{
		{"empty", Group{}, ""},
		{"full", Group{Mode: "scheduled", AutoInstallSeverity: "critical", MaintenanceWindow: "sat,sun 02:00-05:00", DetectionInterval: "4h", BandwidthLimit: "2mbit", Download: "foreground", AllowLocal: []string{"mode", "mode", "bandwidth_limit"}}, ""},
		{"no limit", Group{BandwidthLimit: NoLimit}, ""},
		{"bad mode", Group{Mode: "yolo"}, `mode "yolo": use one of notify, download, auto, scheduled`},
		{"bad severity", Group{AutoInstallSeverity: "urgent"}, `auto_install_severity "urgent": use one of critical`},
		{"bad window", Group{MaintenanceWindow: "someday"}, "maintenance window"},
		{"short interval", Group{DetectionInterval: "5s"}, `detection_interval "5s": use a duration of at least 1m`},
		{"bad rate", Group{BandwidthLimit: "fast"}, `"fast" is not a rate`},
		{"bad download", Group{Download: "sideways"}, `download "sideways": use one of background, foreground`},
		{"unknown allow_local", Group{AllowLocal: []string{"reboot_command"}}, `allow_local: policy setting "reboot_command": use one of mode`},
		{"scheduled without window", Group{Mode: "scheduled"}, "set maintenance_window in the same policy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.g.Check()
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Check() = %v, want %q", err, tc.want)
			}
		})
	}
	g := Group{AllowLocal: []string{"mode", "download", "mode"}}
	if err := g.Check(); err != nil || !reflect.DeepEqual(g.AllowLocal, []string{"download", "mode"}) {
		t.Fatalf("allow_local = %v, %v; want sorted and unique", g.AllowLocal, err)
	}
}

// TestFieldsCoverGroup: every setting of Group has a Field (so forms, the
// CLI's flags and the precedence see it) and every Field a Group setting.
func TestFieldsCoverGroup(t *testing.T) {
	typ := reflect.TypeOf(Group{})
	tags := map[string]bool{}
	for i := 0; i < typ.NumField(); i++ {
		tag, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
		if tag != "allow_local" && tag != "lockdown" { // structured, not string settings
			tags[tag] = true
		}
	}
	for _, f := range Fields {
		var g Group
		if err := g.Set(f.Key, ""); err != nil || !tags[f.Key] {
			t.Errorf("field %s: no Group setting with that JSON name (%v)", f.Key, err)
		}
		delete(tags, f.Key)
	}
	for k := range tags {
		t.Errorf("Group setting %s has no entry in Fields", k)
	}
	var g Group
	for _, f := range Fields {
		v := "x"
		if f.Choices != nil {
			v = f.Choices[0]
		}
		g.Set(f.Key, v)
		if f.Choices != nil && g.Value(f.Key) != v {
			t.Errorf("Set/Value %s: %q", f.Key, g.Value(f.Key))
		}
	}
}
