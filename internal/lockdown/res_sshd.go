package lockdown

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
)

const sshdConfig = "/etc/ssh/sshd_config"

// The block lockdown keeps at the top of sshd_config. It is in the main file,
// not in a drop-in, because the SCAP Security Guide's checks read only
// /etc/ssh/sshd_config; at the top, before Debian's Include line, because
// sshd takes the first value it reads, so `sshd -T` agrees with the file.
const (
	sshdBlockBegin = "# BEGIN bulwark lockdown: `bulwark lockdown undo` restores the previous state."
	sshdBlockEnd   = "# END bulwark lockdown"
)

// SSHDOption is one keyword of the OpenSSH server's global configuration.
// Check reads `sshd -T` on the running system, otherwise sshd_config and its
// Include files under the root (first value wins, as in sshd), falling back
// to Default. Apply writes the keyword into a block at the top of
// sshd_config and comments out conflicting lines elsewhere.
type SSHDOption struct {
	Type    string `yaml:"type"`
	Option  string `yaml:"option"`
	Default string `yaml:"default"`
	Expect  `yaml:",inline"`
}

// Validate checks the parameters.
func (r *SSHDOption) Validate() error {
	if r.Option == "" || strings.ContainsAny(r.Option, " \t=#") {
		return fmt.Errorf("option %q must be one sshd_config keyword such as PermitRootLogin", r.Option)
	}
	return r.Expect.validate()
}

// Describe says what the resource wants.
func (r *SSHDOption) Describe() string {
	return fmt.Sprintf("sshd %s %s", r.Option, r.Expect.String())
}

// sshdSettings reads the global section of sshd_config and its includes and
// returns every setting of each lower-cased keyword in the order sshd reads
// them.
func sshdSettings(t *Tree) (map[string][]setting, error) {
	out := map[string][]setting{}
	files := 0
	var read func(file string, depth int) error
	read = func(file string, depth int) error {
		if depth > 16 {
			return fmt.Errorf("%s: Include nested too deeply", file)
		}
		if files++; files > maxConfigFiles {
			return fmt.Errorf("%s: the configuration includes more than %d files", file, maxConfigFiles)
		}
		data, err := t.ReadFile(file)
		if err != nil {
			return err
		}
		inMatch := false
		var inner error
		configLines(data, func(line int, text string) {
			if inner != nil || inMatch {
				return
			}
			key, val := splitKeyword(text)
			switch key {
			case "match":
				inMatch = true
				return
			case "include":
				for _, pat := range strings.Fields(val) {
					if !strings.HasPrefix(pat, "/") {
						pat = path.Join("/etc/ssh", pat)
					}
					files, err := t.Glob(pat)
					if err != nil {
						inner = err
						return
					}
					for _, f := range files {
						if err := read(f, depth+1); err != nil {
							inner = err
							return
						}
					}
				}
				return
			}
			out[key] = append(out[key], setting{file: file, line: line, value: val})
		})
		return inner
	}
	if err := read(sshdConfig, 0); err != nil {
		return nil, err
	}
	return out, nil
}

// splitKeyword splits "Keyword value" or "Keyword=value".
func splitKeyword(text string) (string, string) {
	i := strings.IndexAny(text, " \t=")
	if i < 0 {
		return strings.ToLower(text), ""
	}
	key := strings.ToLower(text[:i])
	val := strings.TrimLeft(text[i:], " \t")
	val = strings.TrimPrefix(val, "=")
	return key, strings.TrimSpace(strings.Trim(strings.TrimSpace(val), `"`))
}

// Check reads the value in force.
func (r *SSHDOption) Check(ctx context.Context, env *Env) Verdict {
	v := Verdict{Expected: r.Expect.String()}
	key := strings.ToLower(r.Option)
	if st, err := env.Tree.Stat(sshdConfig); err != nil {
		return errorVerdict(err)
	} else if !st.Exists() {
		return Verdict{Result: ResultNotApplicable, Detail: "no " + sshdConfig + ": the OpenSSH server is not installed"}
	}
	settings, err := sshdSettings(env.Tree)
	if err != nil {
		return errorVerdict(err)
	}
	v.Implicit = len(settings[key]) == 0
	switch {
	case env.Live != nil:
		eff, err := env.Live.SSHD(ctx)
		if err != nil {
			return errorVerdict(fmt.Errorf("sshd -T: %w", err))
		}
		val, ok := eff[key]
		if !ok {
			return errorVerdict(fmt.Errorf("sshd -T does not report %s", r.Option))
		}
		v.Actual, v.Where = val, "sshd -T"
	case !v.Implicit:
		s := settings[key][0]
		v.Actual, v.Where = s.value, fmt.Sprintf("%s:%d", s.file, s.line)
	default:
		v.Actual, v.Where = r.Default, "sshd default"
	}
	if v.Actual == "" && r.Default == "" {
		v.Actual = "(unset)"
	}
	return r.Expect.judge(v)
}

// Apply sets the option in the lockdown block of sshd_config and comments
// out lines elsewhere that set it to something else.
func (r *SSHDOption) Apply(_ context.Context, env *Env) error {
	t := env.Tree
	settings, err := sshdSettings(t)
	if err != nil {
		return err
	}
	data, err := t.ReadFile(sshdConfig)
	if err != nil {
		return err
	}
	first, last := findBlock(data, sshdBlockBegin, sshdBlockEnd)
	key := strings.ToLower(r.Option)
	if err := commentOutConflicts(t, conflicts(settings[key], func(s setting) bool {
		return s.file == sshdConfig && s.line > first && s.line < last || r.Expect.OK(s.value)
	})); err != nil {
		return err
	}
	return setBlockLine(t, sshdConfig, sshdBlockBegin, sshdBlockEnd, key, r.Option+" "+r.Value, keywordOf)
}

// findBlock returns the 1-based lines of a managed block's begin and end
// markers in data, or 0, 0 when it has none.
func findBlock(data []byte, begin, end string) (int, int) {
	first := 0
	for i, l := range strings.Split(string(data), "\n") {
		switch {
		case l == begin && first == 0:
			first = i + 1
		case l == end && first > 0:
			return first, i + 1
		}
	}
	return 0, 0
}

// setBlockLine keeps a managed block (begin marker, one line per key,
// sorted, end marker) in file, replacing the line for key. A file without
// the block gets it at the top. The rest of the file is left as it is.
func setBlockLine(t *Tree, file, begin, end, key, line string, keyOf func(string) string) error {
	data, err := t.ReadFile(file)
	if err != nil {
		return err
	}
	lines := strings.SplitAfter(string(data), "\n")
	first, last := findBlock(data, begin, end)
	byKey := map[string][]string{key: {line}}
	var before, after []string
	if first == 0 {
		after = lines
	} else {
		before, after = lines[:first-1], lines[last:]
		for _, l := range lines[first : last-1] {
			l = strings.TrimSuffix(l, "\n")
			if k := keyOf(l); k != key && l != "" && !strings.HasPrefix(l, "#") {
				byKey[k] = append(byKey[k], l)
			}
		}
	}
	out := strings.Join(before, "") + begin + "\n" + keyedLines(byKey) + end + "\n" + strings.Join(after, "")
	return t.EditFile(file, []byte(out))
}

// keyedLines renders the lines of every key, keys sorted.
func keyedLines(byKey map[string][]string) string {
	var sb strings.Builder
	for _, k := range sortedKeys(byKey) {
		for _, l := range byKey[k] {
			sb.WriteString(l)
			sb.WriteByte('\n')
		}
	}
	return sb.String()
}

// setDropInLine keeps a lockdown drop-in as a header plus one line per key,
// sorted, replacing the lines for key. keyOf names the key of a line.
func setDropInLine(t *Tree, file, key string, lines []string, mode fs.FileMode, keyOf func(string) string) error {
	byKey := map[string][]string{}
	data, err := t.ReadFile(file)
	if err == nil {
		for _, l := range strings.Split(string(data), "\n") {
			if l == "" || strings.HasPrefix(l, "#") {
				continue
			}
			k := keyOf(l)
			byKey[k] = append(byKey[k], l)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	byKey[key] = lines
	return t.WriteFile(file, []byte(generatedHeader+keyedLines(byKey)), mode, 0, 0)
}

func keywordOf(line string) string { k, _ := splitKeyword(line); return k }

// SessionRisk refuses PermitRootLogin no while root is logged in over SSH.
func (r *SSHDOption) SessionRisk(s Session) string {
	if !s.SSH {
		return ""
	}
	switch strings.ToLower(r.Option) {
	case "permitrootlogin":
		if s.User == "root" && !strings.EqualFold(r.Value, "yes") {
			if strings.EqualFold(r.Value, "no") || !s.KeyAuth {
				return fmt.Sprintf("you are logged in over SSH as root (from %s); PermitRootLogin %s would refuse your next login as root", s.Client, r.Value)
			}
		}
	case "passwordauthentication", "kbdinteractiveauthentication":
		if strings.EqualFold(r.Value, "no") && !s.KeyAuth {
			return fmt.Sprintf("you are logged in over SSH (from %s) and %s has no authorized_keys; %s no would refuse your next login", s.Client, s.User, r.Option)
		}
	case "allowusers", "allowgroups", "denyusers", "denygroups", "port", "listenaddress":
		return fmt.Sprintf("you are logged in over SSH (from %s); changing %s can refuse your next login", s.Client, r.Option)
	}
	return ""
}
