//go:build !agentonly

package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/term"

	"github.com/bulwarkhq/bulwark/internal/atomicfile"
	"github.com/bulwarkhq/bulwark/internal/server"
)

// FirstPasswordFile, in the data directory, holds the first admin user's
// password when the server's output is not a terminal (a log, a journal):
// the password then never reaches the output, only the file's path does.
const FirstPasswordFile = "first-admin-password"

// showFirstPassword tells the person starting the server how to sign in to
// the console: the password itself only on a terminal, otherwise a 0600
// file in the data directory whose path is printed.
func showFirstPassword(out io.Writer, dataDir, url string, first *server.FirstStart) {
	fmt.Fprintf(out, "\nConsole sign-in: %s/console/ as user %q\n", url, first.AdminUser)
	if f, ok := out.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprintf(out, "  password (shown once, stored only as an argon2id hash): %s\n", first.AdminPassword)
		return
	}
	p := filepath.Join(dataDir, FirstPasswordFile)
	if err := atomicfile.WriteFile(p, []byte(first.AdminPassword+"\n"), 0o600); err != nil {
		fmt.Fprintf(out, "  (could not write the password file %s: %v; create a user with 'bulwark admin users create')\n", p, err)
		return
	}
	if abs, err := filepath.Abs(p); err == nil {
		p = abs
	}
	fmt.Fprintf(out, "  password: in %s (mode 0600; output is not a terminal, so it is not printed). Delete the file after signing in.\n", p)
}
