package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// ticksPerSecond is USER_HZ, the unit of /proc/PID/stat's CPU times; Linux
// fixes it at 100 for user space on every architecture Go runs on.
const ticksPerSecond = 100

// procStat is what this tool reads from /proc/PID/stat.
type procStat struct {
	ppid  int
	ticks uint64 // user + system
	sys   uint64 // system alone: the kernel's work on the process's behalf
}

// parseStat reads /proc/PID/stat's text. The command name, in parentheses,
// may hold spaces and parentheses, so fields are counted from the last ')'.
func parseStat(data []byte) (procStat, error) {
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("no ')' in stat")
	}
	// After ')': state(3) ppid(4) ... utime(14) stime(15).
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 13 {
		return procStat{}, fmt.Errorf("stat has %d fields after the name", len(f))
	}
	ppid, err1 := strconv.Atoi(f[1])
	utime, err2 := strconv.ParseUint(f[11], 10, 64)
	stime, err3 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return procStat{}, fmt.Errorf("bad stat fields %q", f[:13])
	}
	return procStat{ppid: ppid, ticks: utime + stime, sys: stime}, nil
}

// parseRSS returns VmRSS in bytes from /proc/PID/status's text.
func parseRSS(data []byte) (int64, error) {
	for line := range strings.Lines(string(data)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) != 2 || f[1] != "kB" {
				return 0, fmt.Errorf("bad VmRSS line %q", line)
			}
			kb, err := strconv.ParseInt(f[0], 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("no VmRSS")
}

// family is a server process and its children (nginx's workers).
func family(pid int) []int {
	pids := []int{pid}
	dirs, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, d := range dirs {
		data, err := os.ReadFile(d)
		if err != nil {
			continue
		}
		if st, err := parseStat(data); err == nil && st.ppid == pid {
			if child, err := strconv.Atoi(filepath.Base(filepath.Dir(d))); err == nil {
				pids = append(pids, child)
			}
		}
	}
	return pids
}

// cpuTicks sums user+system ticks over pids.
func cpuTicks(pids []int) (uint64, error) {
	return sumProc(pids, "stat", func(data []byte) (uint64, error) {
		st, err := parseStat(data)
		return st.ticks, err
	})
}

// sysTicks sums system ticks over pids.
func sysTicks(pids []int) (uint64, error) {
	return sumProc(pids, "stat", func(data []byte) (uint64, error) {
		st, err := parseStat(data)
		return st.sys, err
	})
}

// rssBytes sums VmRSS over pids.
func rssBytes(pids []int) (int64, error) {
	return sumProc(pids, "status", parseRSS)
}

// sumProc sums what parse reads from /proc/PID/file over pids.
func sumProc[T int64 | uint64](pids []int, file string, parse func([]byte) (T, error)) (T, error) {
	var sum T
	for _, pid := range pids {
		path := fmt.Sprintf("/proc/%d/%s", pid, file)
		data, err := os.ReadFile(path)
		if err != nil {
			return 0, err
		}
		v, err := parse(data)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", path, err)
		}
		sum += v
	}
	return sum, nil
}

// machineTicks is the whole machine's busy time from /proc/stat's cpu
// line: user, nice, system, irq, softirq and steal ticks. What other
// processes took during a phase (machine − server − this tool) tells how
// noisy its figures are.
func machineTicks() uint64 {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0
	}
	var sum uint64
	for _, i := range []int{1, 2, 3, 6, 7, 8} {
		v, _ := strconv.ParseUint(f[i], 10, 64)
		sum += v
	}
	return sum
}
