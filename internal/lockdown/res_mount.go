package lockdown

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
)

const fstab = "/etc/fstab"

// MountOption is a set of options a mount point must have. Check reads
// /proc/self/mounts on the running system, otherwise /etc/fstab under the
// root. When fstab has no entry, Entry (if given) is the line Apply adds;
// without Entry the rule is notapplicable (the directory is not a separate
// file system). The options take effect at the next mount.
type MountOption struct {
	Type       string   `yaml:"type"`
	MountPoint string   `yaml:"mount_point"`
	Options    []string `yaml:"options"`
	Entry      string   `yaml:"entry"`
}

// Validate checks the parameters.
func (r *MountOption) Validate() error {
	if !strings.HasPrefix(r.MountPoint, "/") || strings.ContainsAny(r.MountPoint, " \t") {
		return fmt.Errorf("mount_point %q must be an absolute path such as /tmp", r.MountPoint)
	}
	if len(r.Options) == 0 {
		return errors.New("options must list at least one mount option such as nodev")
	}
	if r.Entry != "" {
		f := strings.Fields(r.Entry)
		if len(f) < 4 || f[1] != r.MountPoint {
			return fmt.Errorf("entry %q must be an fstab line for %s", r.Entry, r.MountPoint)
		}
		if missingOpts(strings.Split(f[3], ","), r.Options) != nil {
			return fmt.Errorf("entry %q must itself have the options %s", r.Entry, strings.Join(r.Options, ","))
		}
	}
	return nil
}

// Describe says what the resource wants.
func (r *MountOption) Describe() string {
	return fmt.Sprintf("%s mounted with %s", r.MountPoint, strings.Join(r.Options, ","))
}

func missingOpts(have, want []string) []string {
	var miss []string
	for _, w := range want {
		found := false
		for _, h := range have {
			found = found || h == w
		}
		if !found {
			miss = append(miss, w)
		}
	}
	return miss
}

// fstabEntry finds the last fstab line for the mount point.
func (r *MountOption) fstabEntry(t *Tree) (line int, opts []string, data []byte, err error) {
	data, err = t.ReadFile(fstab)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil, nil, nil
	}
	if err != nil {
		return 0, nil, nil, err
	}
	configLines(data, func(n int, text string) {
		f := strings.Fields(text)
		if len(f) >= 4 && f[1] == r.MountPoint {
			line, opts = n, strings.Split(f[3], ",")
		}
	})
	return line, opts, data, nil
}

// Check reads the options in force.
func (r *MountOption) Check(ctx context.Context, env *Env) Verdict {
	v := Verdict{Expected: strings.Join(r.Options, ",")}
	if env.Live != nil {
		mounts, err := env.Live.Mounts(ctx)
		if err != nil {
			return errorVerdict(err)
		}
		opts, ok := mounts[r.MountPoint]
		if !ok {
			if r.Entry == "" {
				return Verdict{Result: ResultNotApplicable, Detail: r.MountPoint + " is not a separate file system"}
			}
			return Verdict{Result: ResultFail, Expected: v.Expected, Actual: "not mounted", Where: "/proc/self/mounts"}
		}
		v.Actual, v.Where = strings.Join(opts, ","), "/proc/self/mounts"
		if missingOpts(opts, r.Options) == nil {
			v.Result = ResultPass
		} else {
			v.Result = ResultFail
		}
		return v
	}
	line, opts, _, err := r.fstabEntry(env.Tree)
	if err != nil {
		return errorVerdict(err)
	}
	if line == 0 {
		if r.Entry == "" {
			return Verdict{Result: ResultNotApplicable, Detail: r.MountPoint + " has no entry in /etc/fstab"}
		}
		return Verdict{Result: ResultFail, Expected: v.Expected, Actual: "no fstab entry", Where: fstab}
	}
	v.Actual, v.Where = strings.Join(opts, ","), fmt.Sprintf("%s:%d", fstab, line)
	if miss := missingOpts(opts, r.Options); miss != nil {
		v.Result, v.Detail = ResultFail, "missing "+strings.Join(miss, ",")
	} else {
		v.Result = ResultPass
	}
	return v
}

// Apply comments out the fstab line and adds one with the options, or adds
// Entry when there is no line.
func (r *MountOption) Apply(_ context.Context, env *Env) error {
	t := env.Tree
	line, opts, data, err := r.fstabEntry(t)
	if err != nil {
		return err
	}
	if line == 0 {
		if r.Entry == "" {
			return nil
		}
		if data == nil {
			return t.WriteFile(fstab, []byte(r.Entry+"\n"), 0o644, 0, 0)
		}
		if len(data) > 0 && data[len(data)-1] != '\n' {
			data = append(data, '\n')
		}
		return t.EditFile(fstab, append(data, r.Entry+"\n"...))
	}
	ls := strings.SplitAfter(string(data), "\n")
	f := strings.Fields(ls[line-1])
	f[3] = strings.Join(append(opts, missingOpts(opts, r.Options)...), ",")
	newLine := strings.Join(f, "\t") + "\n"
	data = commentOut(data, map[int]bool{line: true})
	ls = strings.SplitAfter(string(data), "\n")
	ls = append(ls[:line], append([]string{newLine}, ls[line:]...)...)
	return t.EditFile(fstab, []byte(strings.Join(ls, "")))
}
