package agent

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Notifier tells the people at the machine that updates wait for them
// (notify and download modes): a desktop notification in every graphical
// session that has a session bus and notify-send, and a line in the log
// otherwise.
type Notifier struct {
	Log        *slog.Logger
	RunUserDir string // /run/user: one directory per logged-in user, holding its session bus
	NotifySend string // the notify-send program; "" finds it in PATH
}

// Notify implements CycleOptions.Notify.
func (n Notifier) Notify(waiting []UpdateRecord) {
	if len(waiting) == 0 {
		return
	}
	title := fmt.Sprintf("%d security update(s) ready", len(waiting))
	var lines []string
	for i, w := range waiting {
		if i == 5 {
			lines = append(lines, fmt.Sprintf("and %d more", len(waiting)-5))
			break
		}
		lines = append(lines, fmt.Sprintf("%s (%s)", w.Title, w.Severity))
	}
	body := strings.Join(lines, "\n") + "\nInstall with: sudo bulwark agent install --all"
	sent := n.desktop(title, body)
	if n.Log != nil {
		n.Log.Info("updates wait for a person: run `bulwark agent install --all`", "count", len(waiting), "desktop_notifications", sent)
	}
}

// desktop sends the notification to every user session bus it finds and
// returns how many it reached.
func (n Notifier) desktop(title, body string) int {
	prog := n.NotifySend
	if prog == "" {
		p, err := exec.LookPath("notify-send")
		if err != nil {
			return 0
		}
		prog = p
	}
	dir := n.RunUserDir
	if dir == "" {
		dir = "/run/user"
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	sent := 0
	for _, e := range entries {
		uid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		bus := filepath.Join(dir, e.Name(), "bus")
		fi, err := os.Stat(bus)
		if err != nil || fi.Mode()&os.ModeSocket == 0 {
			continue
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok || int(st.Uid) != uid {
			continue // a bus not owned by its user is not trusted
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		cmd := exec.CommandContext(ctx, prog, "--app-name=Bulwark", "--urgency=normal", "--icon=software-update-urgent", title, body)
		cmd.Env = []string{"DBUS_SESSION_BUS_ADDRESS=unix:path=" + bus, "PATH=/usr/bin:/bin"}
		if os.Getuid() == 0 && uid != 0 {
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: st.Gid}}
		}
		if err := cmd.Run(); err == nil {
			sent++
		}
		cancel()
	}
	return sent
}
