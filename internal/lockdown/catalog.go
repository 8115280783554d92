package lockdown

import (
	"fmt"
	"os"

	"github.com/bulwarkhq/bulwark/internal/lockdown/rules"
)

// LoadCatalog returns the built-in rules and profiles, then those of each
// directory in dirs (later ones add or override by id).
func LoadCatalog(dirs ...string) (*Catalog, error) {
	c := NewCatalog(ResourceTypes())
	if err := c.LoadFS(rules.FS, "builtin"); err != nil {
		return nil, fmt.Errorf("built-in rules: %w", err)
	}
	for _, d := range dirs {
		fi, err := os.Stat(d)
		if err != nil {
			return nil, fmt.Errorf("rules directory: %w", err)
		}
		if !fi.IsDir() {
			return nil, fmt.Errorf("rules directory %s is not a directory: give a directory of *.yaml files", d)
		}
		if err := c.LoadFS(os.DirFS(d), d); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// LoadProfileFile adds the profiles (and rules) of one YAML file, for
// `--profile ./custom.yaml`.
func (c *Catalog) LoadProfileFile(file string) ([]string, error) {
	data, err := readCapped(file)
	if err != nil {
		return nil, fmt.Errorf("profile file: %w", err)
	}
	before := map[string]*Profile{}
	for k, v := range c.profiles {
		before[k] = v
	}
	if err := c.Parse(file, data); err != nil {
		return nil, err
	}
	var names []string
	for k, v := range c.profiles {
		if before[k] != v {
			names = append(names, k)
		}
	}
	return names, nil
}
