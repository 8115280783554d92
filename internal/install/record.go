package install

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/bulwarkhq/bulwark/internal/atomicfile"
	"github.com/bulwarkhq/bulwark/internal/capread"
)

// Each handler keeps what its uninstall needs as one JSON record per update
// under StateDir/KIND/ID.json (0600 in a 0700 directory), written
// atomically. These are the three operations every handler shares; the
// checks of a record's content stay with its handler.

func stateFile(stateDir, kind, id string) string {
	return filepath.Join(stateDir, kind, id+".json")
}

// writeRecord stores rec for update id.
func writeRecord(stateDir, kind, id string, rec any) error {
	if err := os.MkdirAll(filepath.Join(stateDir, kind), 0o700); err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(stateFile(stateDir, kind, id), append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("write install record: %w", err)
	}
	return nil
}

// readRecord decodes the record of update id into rec, strictly (unknown
// fields refused), reading at most max bytes. It reports false, and no
// error, when there is no record.
func readRecord(stateDir, kind, id string, max int64, rec any) (bool, error) {
	p := stateFile(stateDir, kind, id)
	b, err := capread.File(p, max)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read install record: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(rec); err != nil {
		return false, fmt.Errorf("install record %s: %w", p, err)
	}
	return true, nil
}

// removeRecord forgets the record of update id.
func removeRecord(stateDir, kind, id string) {
	if err := os.Remove(stateFile(stateDir, kind, id)); err == nil {
		atomicfile.SyncDir(filepath.Join(stateDir, kind))
	}
}
