package config

import (
	"errors"
	"fmt"

	"go.yaml.in/yaml/v3"
)

// YAML is a koanf.Parser over go.yaml.in/yaml/v3 (koanf's own YAML parser
// uses gopkg.in/yaml.v3, which Bulwark does not). A file must hold one
// mapping; nested mappings come out as map[string]any.
type YAML struct{}

// Unmarshal parses b; an empty file is an empty mapping.
func (YAML) Unmarshal(b []byte) (map[string]any, error) {
	var v any
	if err := yaml.Unmarshal(b, &v); err != nil {
		return nil, err
	}
	if v == nil {
		return map[string]any{}, nil
	}
	m, ok := stringKeys(v).(map[string]any)
	if !ok {
		return nil, fmt.Errorf("the file holds %s: write settings as a mapping, key: value", describe(v))
	}
	return m, nil
}

// Marshal writes m as YAML.
func (YAML) Marshal(m map[string]any) ([]byte, error) {
	if m == nil {
		return nil, errors.New("nothing to marshal")
	}
	return yaml.Marshal(m)
}

// stringKeys turns every mapping in v into a map[string]any.
func stringKeys(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = stringKeys(e)
		}
		return x
	case map[any]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[fmt.Sprint(k)] = stringKeys(e)
		}
		return m
	case []any:
		for i, e := range x {
			x[i] = stringKeys(e)
		}
		return x
	}
	return v
}

// describe names the YAML type of v for an error message.
func describe(v any) string {
	switch v.(type) {
	case map[string]any, map[any]any:
		return "a mapping"
	case []any:
		return "a list"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case int, int64, uint64, float64:
		return "a number"
	case nil:
		return "nothing"
	}
	return fmt.Sprintf("a %T", v)
}
