package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// clockTicks is USER_HZ, the unit of /proc/PID/stat times: 100 on every
// Linux architecture Go supports (the kernel scales to it).
const clockTicks = 100

// procStat is what one /proc/PID/stat read says about a process.
type procStat struct {
	ppid  int
	state byte
	// cpuTicks is utime+stime of the process itself, plus cutime+cstime
	// of children it has waited for.
	cpuTicks uint64
}

// parseStat reads /proc/PID/stat text. The command name is in parentheses
// and may itself hold spaces or ')', so fields are counted after the last ')'.
func parseStat(text []byte) (procStat, error) {
	i := bytes.LastIndexByte(text, ')')
	if i < 0 {
		return procStat{}, errors.New("no ')' in stat")
	}
	f := strings.Fields(string(text[i+1:]))
	// After the name: state(3) ppid(4) ... utime(14) stime(15) cutime(16) cstime(17).
	if len(f) < 15 || len(f[0]) != 1 {
		return procStat{}, fmt.Errorf("short stat: %d fields", len(f))
	}
	st := procStat{state: f[0][0]}
	var err error
	if st.ppid, err = strconv.Atoi(f[1]); err != nil {
		return procStat{}, err
	}
	for _, field := range f[11:15] {
		n, err := strconv.ParseUint(field, 10, 64)
		if err != nil {
			return procStat{}, err
		}
		st.cpuTicks += n
	}
	return st, nil
}

func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, err
	}
	return parseStat(b)
}

// parseHWM returns VmHWM (peak resident set) in kB from /proc/PID/status
// text; 0 when absent (a zombie has no memory lines).
func parseHWM(text []byte) uint64 {
	for _, line := range bytes.Split(text, []byte{'\n'}) {
		if v, ok := bytes.CutPrefix(line, []byte("VmHWM:")); ok {
			f := strings.Fields(string(v))
			if len(f) >= 1 {
				n, _ := strconv.ParseUint(f[0], 10, 64)
				return n
			}
		}
	}
	return 0
}

func readHWM(pid int) uint64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	return parseHWM(b)
}

// childrenOf lists the live processes whose parent is pid.
func childrenOf(pid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := readStat(child)
		if err == nil && st.ppid == pid && st.state != 'Z' {
			out = append(out, child)
		}
	}
	return out
}

func cmdline(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return ""
	}
	return strings.TrimRight(strings.ReplaceAll(string(b), "\x00", " "), " ")
}

// tracked is one process of a run.
type tracked struct {
	role     string
	cpuTicks uint64 // last value read while it lived
	hwmKB    uint64 // largest VmHWM read
}

// tree follows the measured process, its children by role, and samples
// their CPU time and peak memory until they exit.
type tree struct {
	root    int
	classes []roleMatch
	procs   map[int]*tracked
}

// roleMatch names a child by a substring of its command line.
type roleMatch struct{ role, substr string }

func newTree(root int, rootRole string, classes []roleMatch) *tree {
	t := &tree{root: root, classes: classes, procs: map[int]*tracked{}}
	t.procs[root] = &tracked{role: rootRole}
	return t
}

// discover adds children of the root that appeared since the last call
// (Telegraf starts its execd children after it starts, and restarts them).
func (t *tree) discover() {
	for _, pid := range childrenOf(t.root) {
		if _, ok := t.procs[pid]; ok {
			continue
		}
		role := "other"
		line := cmdline(pid)
		for _, c := range t.classes {
			if c.substr != "" && strings.Contains(line, c.substr) {
				role = c.role
				break
			}
		}
		t.procs[pid] = &tracked{role: role}
	}
}

// sample reads every tracked process that still lives.
func (t *tree) sample() {
	for pid, p := range t.procs {
		st, err := readStat(pid)
		if err != nil || st.state == 'Z' {
			continue
		}
		if st.cpuTicks > p.cpuTicks {
			p.cpuTicks = st.cpuTicks
		}
		if hwm := readHWM(pid); hwm > p.hwmKB {
			p.hwmKB = hwm
		}
	}
}

// byRole adds up CPU seconds over the processes of each role (a restarted
// child is two processes) and takes their largest peak RSS.
func (t *tree) byRole() map[string]roleStats {
	out := map[string]roleStats{}
	for _, p := range t.procs {
		r := out[p.role]
		r.CPUSeconds += float64(p.cpuTicks) / clockTicks
		r.PeakRSSMB = max(r.PeakRSSMB, float64(p.hwmKB)/1024)
		r.Processes++
		out[p.role] = r
	}
	return out
}

// roleStats is one role's share of a run.
type roleStats struct {
	CPUSeconds float64 `json:"cpu_seconds"`
	PeakRSSMB  float64 `json:"peak_rss_mb"`
	Processes  int     `json:"processes"`
}
