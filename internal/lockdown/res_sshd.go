package lockdown

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
)

const (
	sshdConfig = "/etc/ssh/sshd_config"
	sshdDropIn = "/etc/ssh/sshd_config.d/00-bulwark-lockdown.conf"
)

// SSHDOption is one keyword of the OpenSSH server's global configuration.
// Check reads `sshd -T` on the running system, otherwise sshd_config and its
// Include files under the root (first value wins, as in sshd), falling back
// to Default. Apply writes a drop-in that sorts first in sshd_config.d and
// comments out conflicting lines elsewhere.
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
func sshdSettings(t *Tree) (map[string][]setting, bool, error) {
	out := map[string][]setting{}
	includesDropIns := false
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
					if path.Dir(pat) == path.Dir(sshdDropIn) {
						includesDropIns = true
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
		return nil, false, err
	}
	return out, includesDropIns, nil
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
	if env.Live != nil {
		eff, err := env.Live.SSHD(ctx)
		if err != nil {
			return errorVerdict(fmt.Errorf("sshd -T: %w", err))
		}
		val, ok := eff[key]
		if !ok {
			return errorVerdict(fmt.Errorf("sshd -T does not report %s", r.Option))
		}
		v.Actual, v.Where = val, "sshd -T"
	} else {
		settings, _, err := sshdSettings(env.Tree)
		if err != nil {
			return errorVerdict(err)
		}
		if s := settings[key]; len(s) > 0 {
			v.Actual, v.Where = s[0].value, fmt.Sprintf("%s:%d", s[0].file, s[0].line)
		} else {
			v.Actual, v.Where = r.Default, "sshd default"
		}
	}
	if v.Actual == "" && r.Default == "" {
		v.Actual = "(unset)"
	}
	if r.Expect.OK(v.Actual) {
		v.Result = ResultPass
	} else {
		v.Result = ResultFail
	}
	return v
}

// Apply sets the option in the lockdown drop-in and comments out lines in
// other files that set it to something else.
func (r *SSHDOption) Apply(_ context.Context, env *Env) error {
	t := env.Tree
	settings, included, err := sshdSettings(t)
	if err != nil {
		return err
	}
	key := strings.ToLower(r.Option)
	if err := commentOutConflicts(t, conflicts(settings[key], func(s setting) bool {
		return s.file == sshdDropIn || r.Expect.OK(s.value)
	})); err != nil {
		return err
	}
	if !included {
		// Without the Include line the drop-in would be ignored: add it at the
		// top, where Debian's own sshd_config has it.
		data, err := t.ReadFile(sshdConfig)
		if err != nil {
			return err
		}
		data = append([]byte("Include "+path.Dir(sshdDropIn)+"/*.conf\n"), data...)
		if err := t.EditFile(sshdConfig, data); err != nil {
			return err
		}
	}
	return setDropInLine(t, sshdDropIn, key, []string{r.Option + " " + r.Value}, 0o600, keywordOf)
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
	keys := make([]string, 0, len(byKey))
	for k := range byKey {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var sb strings.Builder
	sb.WriteString(generatedHeader)
	for _, k := range keys {
		for _, l := range byKey[k] {
			sb.WriteString(l)
			sb.WriteByte('\n')
		}
	}
	return t.WriteFile(file, []byte(sb.String()), mode, 0, 0)
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
