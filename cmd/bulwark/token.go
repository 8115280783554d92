package main

import (
	"bufio"
	"fmt"
	"io"
	"strings"

	"github.com/bulwarkhq/bulwark/internal/capread"
)

// maxTokenFile caps a token file or a token read from stdin.
const maxTokenFile = 4 << 10

// readTokenFile reads a token from path, or from stdin when path is "-":
// the first line, trimmed. A file other users can read is refused
// (capread.Secret), as key files are. flag names the option in errors.
func readTokenFile(flag, path string, stdin io.Reader) (string, error) {
	var b []byte
	if path == "-" {
		line, err := bufio.NewReader(io.LimitReader(stdin, maxTokenFile)).ReadString('\n')
		if err != nil && err != io.EOF {
			return "", fmt.Errorf("--%s -: read stdin: %w", flag, err)
		}
		b = []byte(line)
	} else {
		var err error
		if b, err = capread.Secret(path, maxTokenFile); err != nil {
			return "", fmt.Errorf("--%s: %w", flag, err)
		}
	}
	tok, _, _ := strings.Cut(string(b), "\n")
	tok = strings.TrimSpace(tok)
	if tok == "" {
		return "", fmt.Errorf("--%s %s: no token in it", flag, path)
	}
	return tok, nil
}

// tokenOnCommandLine warns that a token given as a flag value is visible
// to every user of the machine (ps, /proc/PID/cmdline) and in shell history.
func tokenOnCommandLine(stderr io.Writer, flag, fileFlag, env string) {
	alt := "--" + fileFlag + " FILE or --" + fileFlag + " - (stdin)"
	if env != "" {
		alt += " or " + env
	}
	fmt.Fprintf(stderr, "warning: --%s puts the token on the command line, where other users can read it (ps, /proc) and shell history keeps it; use %s\n", flag, alt)
}
