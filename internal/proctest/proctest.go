// Package proctest reads /proc for the tests that run our binaries under
// stock Telegraf: which children a process has, and whether one still
// runs once its parent is gone.
package proctest

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Children maps the base name of each argv[0] to the PID of the
// processes whose parent is ppid (zombies aside).
func Children(ppid int) map[string]int {
	out := map[string]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		var pid int
		if _, err := fmt.Sscan(e.Name(), &pid); err != nil || pid <= 0 {
			continue
		}
		state, parent, ok := stat(pid)
		if !ok || state == "Z" || parent != ppid {
			continue
		}
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			continue
		}
		argv0, _, _ := bytes.Cut(cmdline, []byte{0})
		out[filepath.Base(string(argv0))] = pid
	}
	return out
}

// Alive reports whether pid runs: a zombie has exited, and an orphan's
// zombie waits for whoever adopted it.
func Alive(pid int) bool {
	state, _, ok := stat(pid)
	return ok && state != "Z"
}

// stat reads the state and parent of pid from "pid (comm) state ppid ...",
// where comm may hold spaces and parentheses.
func stat(pid int) (state string, ppid int, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", 0, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return "", 0, false
	}
	fields := strings.Fields(string(b[i+1:]))
	if len(fields) < 2 {
		return "", 0, false
	}
	if _, err := fmt.Sscan(fields[1], &ppid); err != nil {
		return "", 0, false
	}
	return fields[0], ppid, true
}
