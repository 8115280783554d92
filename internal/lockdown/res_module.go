package lockdown

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"
)

const modprobeDropIn = "/etc/modprobe.d/bulwark-lockdown.conf"

var modprobeDirs = []string{"/etc/modprobe.d", "/run/modprobe.d", "/usr/local/lib/modprobe.d", "/usr/lib/modprobe.d", "/lib/modprobe.d"}

var moduleName = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`) })

// KernelModule is a kernel module that must not load: modprobe.d has
// `install NAME /bin/false` (so even an explicit modprobe fails) and
// `blacklist NAME`. On the running system a loaded module also fails; it
// goes away at the next reboot.
type KernelModule struct {
	Type   string `yaml:"type"`
	Module string `yaml:"module"`
}

// Validate checks the parameters.
func (r *KernelModule) Validate() error {
	if !moduleName().MatchString(r.Module) {
		return fmt.Errorf("module %q must be a kernel module name such as cramfs", r.Module)
	}
	return nil
}

// Describe says what the resource wants.
func (r *KernelModule) Describe() string { return "kernel module " + r.Module + " cannot be loaded" }

func modNorm(s string) string { return strings.ReplaceAll(s, "-", "_") }

var falseCommands = map[string]bool{"/bin/false": true, "/usr/bin/false": true, "/bin/true": true, "/usr/bin/true": true}

// disabled finds an install-to-false line for the module.
func (r *KernelModule) disabled(t *Tree) (string, error) {
	want := modNorm(r.Module)
	for _, d := range modprobeDirs {
		files, err := t.Glob(d + "/*.conf")
		if err != nil {
			return "", err
		}
		for _, f := range files {
			data, err := t.ReadFile(f)
			if err != nil {
				return "", err
			}
			where := ""
			configLines(data, func(line int, text string) {
				w := strings.Fields(text)
				if len(w) >= 3 && w[0] == "install" && modNorm(w[1]) == want && falseCommands[w[2]] && where == "" {
					where = fmt.Sprintf("%s:%d", f, line)
				}
			})
			if where != "" {
				return where, nil
			}
		}
	}
	return "", nil
}

// Check reads modprobe.d and, on the running system, /proc/modules.
func (r *KernelModule) Check(ctx context.Context, env *Env) Verdict {
	v := Verdict{Expected: "install " + r.Module + " /bin/false"}
	where, err := r.disabled(env.Tree)
	if err != nil {
		return errorVerdict(err)
	}
	if env.Live != nil {
		loaded, err := env.Live.ModuleLoaded(ctx, r.Module)
		if err != nil {
			return errorVerdict(err)
		}
		if loaded {
			return Verdict{Result: ResultFail, Expected: v.Expected, Actual: "loaded", Where: "/proc/modules", Detail: "the module is loaded now; it stays until unloaded or the next reboot"}
		}
	}
	if where == "" {
		v.Result, v.Actual = ResultFail, "loadable"
		return v
	}
	v.Result, v.Actual, v.Where = ResultPass, "disabled", where
	return v
}

// Apply adds install and blacklist lines to the lockdown drop-in.
func (r *KernelModule) Apply(_ context.Context, env *Env) error {
	lines := []string{"install " + r.Module + " /bin/false", "blacklist " + r.Module}
	return setDropInLine(env.Tree, modprobeDropIn, modNorm(r.Module), lines, 0o644, func(l string) string {
		w := strings.Fields(l)
		if len(w) < 2 {
			return l
		}
		return modNorm(w[1])
	})
}
