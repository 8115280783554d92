package approval

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

const sum = "a3f1c0ffee00000000000000000000000000000000000000000000000000beef"

func good() *Document {
	dl := time.Date(2026, 12, 1, 18, 0, 0, 0, time.FixedZone("CET", 3600))
	return &Document{Group: "web-servers", Updates: []Approval{
		{Vendor: "debian", ID: "BW-2", Action: ActionInstall, Rollout: 100, Deadline: &dl,
			Targets: []Target{{Path: "updates/BW-2/x.deb", Length: 10, SHA256: sum}, {Path: "updates/BW-2/update.json", Length: 3, SHA256: sum}}},
		{Vendor: "debian", ID: "BW-1", Action: ActionDecline, Rollout: 100},
	}}
}

func TestRoundTripIsDeterministic(t *testing.T) {
	b, err := good().JSON()
	if err != nil {
		t.Fatal(err)
	}
	d, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	b2, err := d.JSON()
	if err != nil || !bytes.Equal(b, b2) {
		t.Fatalf("round trip changed bytes:\n%s\n%s", b, b2)
	}
	if d.Updates[0].ID != "BW-1" || d.Updates[1].Targets[0].Path != "updates/BW-2/update.json" {
		t.Fatalf("not sorted: %+v", d.Updates)
	}
	if !strings.Contains(string(b), `"deadline": "2026-12-01T17:00:00Z"`) {
		t.Fatalf("deadline not in UTC: %s", b)
	}
	if d.Find("debian", "BW-2") == nil || d.Find("debian", "BW-3") != nil {
		t.Fatal("Find")
	}
}

func TestParseRefuses(t *testing.T) {
	for _, tc := range []struct {
		name, doc, want string
	}{
		{"unknown field", `{"group":"g","updates":[],"extra":1}`, "unknown field"},
		{"trailing data", `{"group":"g","updates":[]} {}`, "data after"},
		{"bad group", `{"group":"../etc","updates":[]}`, "group"},
		{"bad action", `{"group":"g","updates":[{"vendor":"v","id":"A","action":"run","rollout":100,"targets":[{"path":"updates/A/u","length":1,"sha256":"` + sum + `"}]}]}`, "action"},
		{"rollout 0", `{"group":"g","updates":[{"vendor":"v","id":"A","action":"decline","rollout":0,"targets":[]}]}`, "rollout 0"},
		{"path of another update", `{"group":"g","updates":[{"vendor":"v","id":"A","action":"install","rollout":5,"targets":[{"path":"updates/B/x","length":1,"sha256":"` + sum + `"}]}]}`, "must be updates/A/"},
		{"path traversal", `{"group":"g","updates":[{"vendor":"v","id":"A","action":"install","rollout":5,"targets":[{"path":"updates/A/../../x","length":1,"sha256":"` + sum + `"}]}]}`, "must be updates/A/"},
		{"bad hash", `{"group":"g","updates":[{"vendor":"v","id":"A","action":"install","rollout":5,"targets":[{"path":"updates/A/x","length":1,"sha256":"XYZ"}]}]}`, "sha256"},
		{"install without targets", `{"group":"g","updates":[{"vendor":"v","id":"A","action":"install","rollout":5,"targets":[]}]}`, "at least"},
		{"twice", `{"group":"g","updates":[{"vendor":"v","id":"A","action":"decline","rollout":5},{"vendor":"v","id":"A","action":"decline","rollout":5}]}`, "approved twice"},
		{"oversized", `{"group":"g","updates":[],"pad":"` + strings.Repeat("x", MaxSize) + `"}`, "limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.doc))
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v; want ErrInvalid mentioning %q", err, tc.want)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	b, _ := good().JSON()
	f.Add(b)
	f.Add([]byte(`{"group":"g","updates":[]}`))
	f.Add([]byte(`{"group":"g","updates":[{"vendor":"v","id":"A","action":"decline","rollout":5}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := Parse(data)
		if err != nil {
			return
		}
		out, err := d.JSON()
		if err != nil {
			t.Fatalf("accepted document does not encode: %v", err)
		}
		d2, err := Parse(out)
		if err != nil {
			t.Fatalf("encoded document does not parse: %v\n%s", err, out)
		}
		out2, _ := d2.JSON()
		if !bytes.Equal(out, out2) {
			t.Fatalf("encoding not stable:\n%s\n%s", out, out2)
		}
	})
}
