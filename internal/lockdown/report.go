package lockdown

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"html/template"
	"io"
	"sort"
	"strings"
	"sync"
)

// Formats are the report formats WriteReport knows.
var Formats = []string{"text", "json", "html", "junit"}

// WriteReport writes rep in one of Formats.
func WriteReport(w io.Writer, rep *Report, format string) error {
	switch format {
	case "text", "":
		return writeText(w, rep)
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	case "html":
		return htmlReport().Execute(w, rep)
	case "junit":
		return writeJUnit(w, rep)
	}
	return fmt.Errorf("output format %q is not one of %s", format, strings.Join(Formats, ", "))
}

// WriteChanges writes the planned changes as text: one header per path and
// the unified diff of its content.
func WriteChanges(w io.Writer, changes []Change) {
	for _, c := range changes {
		fmt.Fprintf(w, "%s: %s -> %s\n", c.Path, c.Before, c.After)
		if c.Diff != "" {
			io.WriteString(w, c.Diff)
		}
	}
}

var resultOrder = map[Result]int{ResultFail: 0, ResultError: 1, ResultFixed: 2, ResultNotChecked: 3, ResultPass: 4, ResultNotApplicable: 5}

func writeText(w io.Writer, rep *Report) error {
	fmt.Fprintf(w, "Lockdown %s of %s with profile %s\n", rep.Kind, rep.Root, rep.Profile)
	if rep.Run != "" {
		undo := "bulwark lockdown undo " + rep.Run
		if rep.Root != "/" {
			undo = "bulwark lockdown undo --root " + rep.Root + " " + rep.Run
		}
		fmt.Fprintf(w, "Run %s (undo with: %s)\n", rep.Run, undo)
	}
	fmt.Fprintln(w)
	results := append([]RuleResult(nil), rep.Results...)
	sort.SliceStable(results, func(i, j int) bool { return resultOrder[results[i].Result] < resultOrder[results[j].Result] })
	for _, r := range results {
		fmt.Fprintf(w, "%-13s %-6s %-36s %s\n", r.Label(), r.Severity, r.ID, r.Title)
		if r.Result == ResultFail || r.Result == ResultError || r.Result == ResultFixed {
			if r.Actual != "" || r.Expected != "" {
				where := ""
				if r.Where != "" {
					where = " (" + r.Where + ")"
				}
				fmt.Fprintf(w, "%20s found %s%s, want %s\n", "", r.Actual, where, r.Expected)
			}
			if r.Detail != "" {
				fmt.Fprintf(w, "%20s %s\n", "", r.Detail)
			}
			if r.Result == ResultFail && r.Waiver == nil {
				fmt.Fprintf(w, "%20s why: %s\n", "", oneLine(r.Rationale))
			}
		}
		if r.Waiver != nil {
			fmt.Fprintf(w, "%20s waived until %s: %s\n", "", r.Waiver.Expires, r.Waiver.Reason)
		}
		if r.ExpiredWaiver != nil {
			fmt.Fprintf(w, "%20s waiver expired on %s and is ignored\n", "", r.ExpiredWaiver.Expires)
		}
		if r.Note != "" {
			fmt.Fprintf(w, "%20s %s\n", "", r.Note)
		}
	}
	fmt.Fprintln(w)
	var counts []string
	for _, res := range []Result{ResultPass, ResultFixed, ResultWaived, ResultFail, ResultError, ResultNotApplicable, ResultNotChecked} {
		if n := rep.Counts[res]; n > 0 {
			counts = append(counts, fmt.Sprintf("%d %s", n, res))
		}
	}
	fmt.Fprintf(w, "%d rules: %s; score %.1f\n", len(rep.Results), strings.Join(counts, ", "), rep.Score)
	for _, n := range rep.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	if rep.Reboot {
		fmt.Fprintln(w, "A reboot is needed for some changes (kernel modules, mount options) to take effect.")
	}
	return nil
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

type junitSuites struct {
	XMLName xml.Name     `xml:"testsuites"`
	Suites  []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Errors   int         `xml:"errors,attr"`
	Skipped  int         `xml:"skipped,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Failure   *junitMessage `xml:"failure,omitempty"`
	Error     *junitMessage `xml:"error,omitempty"`
	Skipped   *junitMessage `xml:"skipped,omitempty"`
}

type junitMessage struct {
	Message string `xml:"message,attr"`
	Body    string `xml:",chardata"`
}

func writeJUnit(w io.Writer, rep *Report) error {
	s := junitSuite{Name: "lockdown." + rep.Profile, Tests: len(rep.Results)}
	for _, r := range rep.Results {
		c := junitCase{Name: r.ID + ": " + r.Title, Classname: "lockdown." + r.Type}
		msg := fmt.Sprintf("found %s, want %s", r.Actual, r.Expected)
		body := fmt.Sprintf("%s\nwhere: %s\n%s\nwhy: %s", msg, r.Where, r.Detail, oneLine(r.Rationale))
		switch {
		case r.Result == ResultFail && r.Waiver != nil:
			c.Skipped = &junitMessage{Message: "waived until " + r.Waiver.Expires + ": " + r.Waiver.Reason}
			s.Skipped++
		case r.Result == ResultFail:
			c.Failure = &junitMessage{Message: msg, Body: body}
			s.Failures++
		case r.Result == ResultError:
			c.Error = &junitMessage{Message: r.Detail, Body: body}
			s.Errors++
		case r.Result == ResultNotApplicable || r.Result == ResultNotChecked:
			c.Skipped = &junitMessage{Message: string(r.Result) + ": " + r.Detail}
			s.Skipped++
		}
		s.Cases = append(s.Cases, c)
	}
	io.WriteString(w, xml.Header)
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(junitSuites{Suites: []junitSuite{s}}); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

// htmlReport is a single self-contained page: no script, no external style
// sheet or font, so it reads offline and can be mailed. It is parsed when
// first used, not at every start of the agent.
var htmlReport = sync.OnceValue(func() *template.Template {
	return template.Must(template.New("report").Funcs(template.FuncMap{
		"label":   func(r RuleResult) string { return string(r.Label()) },
		"oneLine": oneLine,
	}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Lockdown {{.Kind}}: {{.Profile}} on {{.Root}}</title>
<style>
body{font:15px/1.4 system-ui,sans-serif;margin:2em auto;max-width:70em;padding:0 1em;color:#222}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:.35em .5em;border-bottom:1px solid #ddd;vertical-align:top}
.r{font-weight:600;white-space:nowrap}
.pass,.fixed{color:#1a7f37}.fail,.error{color:#c62828}.waived{color:#b26a00}.notapplicable,.notchecked{color:#777}
.score{font-size:2em;font-weight:700}
details{margin:.2em 0}code{font-size:90%}
</style>
</head>
<body>
<h1>Lockdown {{.Kind}}: profile {{.Profile}}</h1>
<p>Root <code>{{.Root}}</code>, {{.Time.Format "2006-01-02 15:04:05 UTC"}}{{if .Run}}, run <code>{{.Run}}</code>{{end}}.</p>
<p><span class="score">{{printf "%.1f" .Score}}</span> / 100 (severity-weighted)
 &mdash; {{range $k, $v := .Counts}}<span class="{{$k}}">{{$v}} {{$k}}</span> {{end}}</p>
<table>
<thead><tr><th>Result</th><th>Severity</th><th>Rule</th><th>Found / wanted</th></tr></thead>
<tbody>
{{range .Results}}<tr>
<td class="r {{label .}}">{{label .}}</td>
<td>{{.Severity}}</td>
<td><details><summary><strong>{{.ID}}</strong> {{.Title}}</summary>
<p>{{oneLine .Rationale}}</p>
<p>{{.Description}}</p>
{{with .References.SSG}}<p>SSG: {{range .}}<code>{{.}}</code> {{end}}</p>{{end}}
{{with .References.CIS}}<p>CIS: {{range .}}{{.}} {{end}}</p>{{end}}
{{with .References.CISNginx}}<p>CIS NGINX: {{range .}}{{.}} {{end}}</p>{{end}}
{{with .References.Lynis}}<p>Lynis: {{range .}}{{.}} {{end}}</p>{{end}}
{{with .Waiver}}<p>Waived until {{.Expires}}: {{.Reason}}</p>{{end}}
{{with .ExpiredWaiver}}<p>A waiver expired on {{.Expires}} and is ignored.</p>{{end}}
{{with .Note}}<p>{{.}}</p>{{end}}
</details></td>
<td>{{if .Actual}}{{.Actual}}{{end}}{{if .Where}} <small>({{.Where}})</small>{{end}}{{if .Expected}}<br>want {{.Expected}}{{end}}{{with .Detail}}<br><small>{{.}}</small>{{end}}</td>
</tr>
{{end}}</tbody>
</table>
{{if .Changes}}<h2>Changes</h2>
{{range .Changes}}<h3><code>{{.Path}}</code></h3><p>{{.Before}} &rarr; {{.After}}</p>{{with .Diff}}<pre>{{.}}</pre>{{end}}{{end}}{{end}}
{{range .Notes}}<p>Note: {{.}}</p>{{end}}
</body>
</html>
`))
})
