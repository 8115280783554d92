package lockdown

import (
	"context"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"
)

const (
	nginxConf   = "/etc/nginx/nginx.conf"
	nginxDropIn = "/etc/nginx/conf.d/bulwark-lockdown.conf"
)

// maxNginxDirectives caps the size of a parsed nginx configuration.
const maxNginxDirectives = 100000

// NginxDirective is a directive of nginx's configuration, for the URLScan
// idea applied to nginx: no version banner, no directory listings, only the
// methods a site needs, modern TLS, request size limits.
//
// In context http, Check finds the directive at the http level (falling back
// to Default) and Apply writes it to a conf.d drop-in, commenting out other
// http-level lines that set it (nginx refuses duplicates). Forbid fails if
// the directive has that value in any context, and Apply comments those
// lines out. Methods checks that every server block refuses other methods
// with 405, and Apply adds that to each server block.
type NginxDirective struct {
	Type      string   `yaml:"type"`
	Directive string   `yaml:"directive"`
	Context   string   `yaml:"context"`
	Default   string   `yaml:"default"`
	Forbid    string   `yaml:"forbid"`
	Methods   []string `yaml:"methods"`
	Expect    `yaml:",inline"`
}

// Validate checks the parameters.
func (r *NginxDirective) Validate() error {
	switch {
	case len(r.Methods) > 0:
		for _, m := range r.Methods {
			if m == "" || strings.ToUpper(m) != m || strings.ContainsAny(m, " |()$^") {
				return fmt.Errorf("methods entry %q must be an upper-case HTTP method such as GET", m)
			}
		}
		r.Directive = "if"
		return nil
	case r.Forbid != "":
		if r.Directive == "" {
			return errors.New("directive is required with forbid")
		}
		return nil
	}
	if r.Directive == "" || strings.ContainsAny(r.Directive, " \t;{}") {
		return fmt.Errorf("directive %q must be one nginx directive name such as server_tokens", r.Directive)
	}
	if r.Context != "http" {
		return fmt.Errorf("context %q: only http is supported for a value (or use forbid or methods)", r.Context)
	}
	return r.Expect.validate()
}

// Describe says what the resource wants.
func (r *NginxDirective) Describe() string {
	switch {
	case len(r.Methods) > 0:
		return "nginx: every server refuses methods other than " + strings.Join(r.Methods, ", ")
	case r.Forbid != "":
		return fmt.Sprintf("nginx: no %s %s anywhere", r.Directive, r.Forbid)
	}
	return fmt.Sprintf("nginx http { %s %s }", r.Directive, r.Expect.String())
}

// nginxNode is one directive of an nginx configuration.
type nginxNode struct {
	name      string
	args      []string
	file      string
	line, end int
	block     []*nginxNode
	hasBlock  bool
}

type nginxParser struct {
	t     *Tree
	count int
	files int
}

// maxConfigFiles caps how many files one configuration's includes may read,
// so that a hostile image cannot make a parse exponential.
const maxConfigFiles = 256

// parseFile tokenizes and parses one file, expanding include directives.
func (p *nginxParser) parseFile(file string, depth int) ([]*nginxNode, error) {
	if depth > 16 {
		return nil, fmt.Errorf("%s: include nested too deeply", file)
	}
	if p.files++; p.files > maxConfigFiles {
		return nil, fmt.Errorf("%s: the configuration includes more than %d files", file, maxConfigFiles)
	}
	data, err := p.t.ReadFile(file)
	if err != nil {
		return nil, err
	}
	toks, err := nginxTokens(file, string(data))
	if err != nil {
		return nil, err
	}
	nodes, rest, err := p.parseBlock(file, toks, depth, false)
	if err != nil {
		return nil, err
	}
	if len(rest) > 0 {
		return nil, fmt.Errorf("%s:%d: unexpected }", file, rest[0].line)
	}
	return nodes, nil
}

type nginxToken struct {
	text   string
	line   int
	quoted bool
}

func nginxTokens(file, s string) ([]nginxToken, error) {
	var toks []nginxToken
	line := 1
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\n':
			line++
			i++
		case c == ' ' || c == '\t' || c == '\r':
			i++
		case c == '#':
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case c == ';' || c == '{' || c == '}':
			toks = append(toks, nginxToken{text: string(c), line: line})
			i++
		case c == '"' || c == '\'':
			start, startLine := i+1, line
			i++
			for i < len(s) && s[i] != c {
				if s[i] == '\\' {
					i++
				}
				if i < len(s) && s[i] == '\n' {
					line++
				}
				i++
			}
			if i >= len(s) {
				return nil, fmt.Errorf("%s:%d: unterminated quote", file, startLine)
			}
			toks = append(toks, nginxToken{text: s[start:i], line: startLine, quoted: true})
			i++
		default:
			start := i
			depth := 0
			for i < len(s) {
				ch := s[i]
				if ch == '(' {
					depth++
				} else if ch == ')' && depth > 0 {
					depth--
				} else if depth == 0 && (ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == ';' || ch == '{' || ch == '}') {
					break
				}
				if ch == '\\' {
					i++
				}
				i++
			}
			toks = append(toks, nginxToken{text: s[start:min(i, len(s))], line: line})
		}
	}
	return toks, nil
}

func (p *nginxParser) parseBlock(file string, toks []nginxToken, depth int, inner bool) ([]*nginxNode, []nginxToken, error) {
	var nodes []*nginxNode
	for len(toks) > 0 {
		if toks[0].text == "}" && !toks[0].quoted {
			if !inner {
				return nodes, toks, nil
			}
			return nodes, toks, nil
		}
		n := &nginxNode{name: toks[0].text, file: file, line: toks[0].line}
		p.count++
		if p.count > maxNginxDirectives {
			return nil, nil, fmt.Errorf("nginx configuration has more than %d directives", maxNginxDirectives)
		}
		toks = toks[1:]
		for len(toks) > 0 && (toks[0].quoted || (toks[0].text != ";" && toks[0].text != "{" && toks[0].text != "}")) {
			n.args = append(n.args, toks[0].text)
			toks = toks[1:]
		}
		if len(toks) == 0 {
			return nil, nil, fmt.Errorf("%s:%d: directive %q has no ; or {", file, n.line, n.name)
		}
		switch toks[0].text {
		case ";":
			n.end = toks[0].line
			toks = toks[1:]
		case "{":
			n.hasBlock = true
			var err error
			n.block, toks, err = p.parseBlock(file, toks[1:], depth, true)
			if err != nil {
				return nil, nil, err
			}
			if len(toks) == 0 {
				return nil, nil, fmt.Errorf("%s:%d: block %q is not closed", file, n.line, n.name)
			}
			n.end = toks[0].line
			toks = toks[1:]
		default:
			return nil, nil, fmt.Errorf("%s:%d: unexpected }", file, toks[0].line)
		}
		if n.name == "include" && len(n.args) == 1 {
			pat := n.args[0]
			if !strings.HasPrefix(pat, "/") {
				pat = path.Join("/etc/nginx", pat)
			}
			files := []string{pat}
			if strings.ContainsAny(pat, "*?[") {
				var err error
				if files, err = p.t.Glob(pat); err != nil {
					return nil, nil, err
				}
			}
			for _, f := range files {
				sub, err := p.parseFile(f, depth+1)
				if err != nil {
					return nil, nil, err
				}
				nodes = append(nodes, sub...)
			}
			continue
		}
		nodes = append(nodes, n)
	}
	return nodes, toks, nil
}

func parseNginx(t *Tree) ([]*nginxNode, error) {
	p := &nginxParser{t: t}
	return p.parseFile(nginxConf, 0)
}

func findBlocks(nodes []*nginxNode, name string) []*nginxNode {
	var out []*nginxNode
	for _, n := range nodes {
		if n.name == name && n.hasBlock {
			out = append(out, n)
		}
	}
	return out
}

func walkNginx(nodes []*nginxNode, f func(*nginxNode)) {
	for _, n := range nodes {
		f(n)
		walkNginx(n.block, f)
	}
}

func (r *NginxDirective) methodCondition() string {
	return "($request_method !~ ^(" + strings.Join(r.Methods, "|") + ")$)"
}

func (r *NginxDirective) hasMethodGuard(server *nginxNode) bool {
	for _, n := range server.block {
		if n.name == "if" && strings.Join(n.args, " ") == r.methodCondition() {
			for _, b := range n.block {
				if b.name == "return" && len(b.args) > 0 && (b.args[0] == "405" || b.args[0] == "444") {
					return true
				}
			}
		}
	}
	return false
}

// Check parses the configuration under the root and compares.
func (r *NginxDirective) Check(_ context.Context, env *Env) Verdict {
	if st, err := env.Tree.Stat(nginxConf); err != nil {
		return errorVerdict(err)
	} else if !st.Exists() {
		return Verdict{Result: ResultNotApplicable, Detail: "no " + nginxConf + ": nginx is not installed"}
	}
	nodes, err := parseNginx(env.Tree)
	if err != nil {
		return errorVerdict(err)
	}
	https := findBlocks(nodes, "http")
	switch {
	case len(r.Methods) > 0:
		v := Verdict{Result: ResultPass, Expected: "if " + r.methodCondition() + " { return 405; } in every server"}
		var bad []string
		count := 0
		for _, h := range https {
			for _, s := range findBlocks(h.block, "server") {
				count++
				if !r.hasMethodGuard(s) {
					bad = append(bad, fmt.Sprintf("%s:%d", s.file, s.line))
				}
			}
		}
		if count == 0 {
			return Verdict{Result: ResultNotApplicable, Detail: "no server blocks"}
		}
		if len(bad) > 0 {
			v.Result, v.Actual, v.Where = ResultFail, "any method allowed", strings.Join(bad, ", ")
		} else {
			v.Actual = "other methods refused"
		}
		return v
	case r.Forbid != "":
		v := Verdict{Result: ResultPass, Expected: "no " + r.Directive + " " + r.Forbid, Actual: "none"}
		var bad []string
		walkNginx(nodes, func(n *nginxNode) {
			if n.name == r.Directive && strings.Join(n.args, " ") == r.Forbid {
				bad = append(bad, fmt.Sprintf("%s:%d", n.file, n.line))
			}
		})
		if len(bad) > 0 {
			v.Result, v.Actual, v.Where = ResultFail, r.Directive+" "+r.Forbid, strings.Join(bad, ", ")
		}
		return v
	}
	v := Verdict{Expected: r.Expect.String()}
	for _, h := range https {
		for _, n := range h.block {
			if n.name == r.Directive {
				v.Actual, v.Where = strings.Join(n.args, " "), fmt.Sprintf("%s:%d", n.file, n.line)
			}
		}
	}
	if v.Where == "" {
		v.Actual, v.Where = r.Default, "nginx default"
	}
	return r.Expect.judge(v)
}

// Apply changes the configuration as described on the type.
func (r *NginxDirective) Apply(_ context.Context, env *Env) error {
	t := env.Tree
	nodes, err := parseNginx(t)
	if err != nil {
		return err
	}
	https := findBlocks(nodes, "http")
	switch {
	case len(r.Methods) > 0:
		inserts := map[string][]int{}
		for _, h := range https {
			for _, s := range findBlocks(h.block, "server") {
				if !r.hasMethodGuard(s) {
					inserts[s.file] = append(inserts[s.file], s.line)
				}
			}
		}
		guard := "\t# Only the methods this site needs (bulwark lockdown).\n\tif " + r.methodCondition() + " { return 405; }\n"
		for file, lines := range inserts {
			data, err := t.ReadFile(file)
			if err != nil {
				return err
			}
			ls := strings.SplitAfter(string(data), "\n")
			sort.Ints(lines)
			for i := len(lines) - 1; i >= 0; i-- {
				l := lines[i]
				if !strings.HasSuffix(strings.TrimSpace(strings.SplitN(ls[l-1], "#", 2)[0]), "{") {
					return fmt.Errorf("%s:%d: the server block's { is not on its line; add %q by hand", file, l, strings.TrimSpace(guard))
				}
				ls = append(ls[:l], append([]string{guard}, ls[l:]...)...)
			}
			if err := t.EditFile(file, []byte(strings.Join(ls, ""))); err != nil {
				return err
			}
		}
		return nil
	case r.Forbid != "":
		lines := map[string]map[int]bool{}
		walkNginx(nodes, func(n *nginxNode) {
			if n.name == r.Directive && strings.Join(n.args, " ") == r.Forbid {
				if lines[n.file] == nil {
					lines[n.file] = map[int]bool{}
				}
				for l := n.line; l <= n.end; l++ {
					lines[n.file][l] = true
				}
			}
		})
		return commentOutFiles(t, lines)
	}
	includesDropIn := false
	lines := map[string]map[int]bool{}
	for _, h := range https {
		for _, n := range h.block {
			if n.file == nginxDropIn {
				includesDropIn = true
				continue
			}
			if n.name == r.Directive {
				if lines[n.file] == nil {
					lines[n.file] = map[int]bool{}
				}
				for l := n.line; l <= n.end; l++ {
					lines[n.file][l] = true
				}
			}
		}
	}
	if !includesDropIn && !r.confDIncluded(t, https) {
		return fmt.Errorf("%s does not include /etc/nginx/conf.d/*.conf inside http; set %s %s there by hand", nginxConf, r.Directive, r.Value)
	}
	if err := commentOutFiles(t, lines); err != nil {
		return err
	}
	return setDropInLine(t, nginxDropIn, r.Directive, []string{r.Directive + " " + r.Value + ";"}, 0o644, func(l string) string {
		return strings.Fields(l)[0]
	})
}

// confDIncluded reports whether an http block includes conf.d/*.conf, by
// reading the raw http block of nginx.conf.
func (r *NginxDirective) confDIncluded(t *Tree, https []*nginxNode) bool {
	data, err := t.ReadFile(nginxConf)
	if err != nil {
		return false
	}
	ls := strings.Split(string(data), "\n")
	for _, h := range https {
		if h.file != nginxConf {
			continue
		}
		for i := h.line; i <= h.end && i <= len(ls); i++ {
			l := strings.TrimSpace(strings.SplitN(ls[i-1], "#", 2)[0])
			if l == "include /etc/nginx/conf.d/*.conf;" || l == "include conf.d/*.conf;" {
				return true
			}
		}
	}
	return false
}

func commentOutFiles(t *Tree, lines map[string]map[int]bool) error {
	for file, ls := range lines {
		data, err := t.ReadFile(file)
		if err != nil {
			return err
		}
		if err := t.EditFile(file, commentOut(data, ls)); err != nil {
			return err
		}
	}
	return nil
}
