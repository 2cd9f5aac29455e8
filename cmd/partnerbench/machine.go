package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"
)

// machineMeta describes where and on what the figures were taken: they
// compare only with figures of the same machine and build, and a shared
// machine's load (other tenants, CPU steal) moves every figure of a run.
func machineMeta(started time.Time) map[string]any {
	m := map[string]any{"go": runtime.Version(), "cpus": runtime.NumCPU(), "os": runtime.GOOS, "arch": runtime.GOARCH,
		"started_at": started.UTC().Format(time.RFC3339)}
	if v := cpuInfo("model name"); v != "" {
		m["cpu_model"] = v
	}
	if kb := memInfoKB("MemTotal"); kb > 0 {
		m["mem_total_mb"] = kb / 1024
	}
	if l, ok := loadAvg1m(); ok {
		m["load_avg_1m_start"] = l
	}
	if rev, dirty := buildCommit(); rev != "" {
		m["commit"] = rev
		m["commit_dirty"] = dirty
	}
	return m
}

// finishMeta adds what the run itself did to the machine: the load at its
// end and the share of CPU time the hypervisor gave to others (steal)
// while it ran.
func finishMeta(m map[string]any, cpuStart cpuTimes) {
	m["finished_at"] = time.Now().UTC().Format(time.RFC3339)
	if l, ok := loadAvg1m(); ok {
		m["load_avg_1m_end"] = l
	}
	if end := readCPUTimes(); end.total > cpuStart.total {
		m["cpu_steal_share"] = float64(end.steal-cpuStart.steal) / float64(end.total-cpuStart.total)
	}
}

// machineLine is the one-line summary printed above the table.
func machineLine(m map[string]any) string {
	var b strings.Builder
	b.WriteString("machine:")
	for _, k := range []string{"cpu_model", "cpus", "mem_total_mb", "go", "commit", "commit_dirty", "load_avg_1m_start", "load_avg_1m_end", "cpu_steal_share"} {
		switch v := m[k].(type) {
		case nil:
		case float64:
			fmt.Fprintf(&b, " %s=%.3g", k, v)
		case string:
			fmt.Fprintf(&b, " %s=%q", k, v)
		default:
			fmt.Fprintf(&b, " %s=%v", k, v)
		}
	}
	return b.String()
}

func cpuInfo(field string) string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == field {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func memInfoKB(field string) int {
	raw, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			return n
		}
	}
	return 0
}

func loadAvg1m() (float64, bool) {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0, false
	}
	f := strings.Fields(string(raw))
	if len(f) == 0 {
		return 0, false
	}
	l, err := strconv.ParseFloat(f[0], 64)
	return l, err == nil
}

// cpuTimes are the machine's CPU jiffies (/proc/stat's first line).
type cpuTimes struct{ total, steal uint64 }

func readCPUTimes() cpuTimes {
	raw, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuTimes{}
	}
	line, _, _ := strings.Cut(string(raw), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return cpuTimes{}
	}
	var t cpuTimes
	// user nice system idle iowait irq softirq steal [guest guest_nice,
	// already counted in user and nice]
	for i, s := range f[1:9] {
		n, _ := strconv.ParseUint(s, 10, 64)
		t.total += n
		if i == 7 {
			t.steal = n
		}
	}
	return t
}

// buildCommit is the commit the tool was built from: the VCS stamp of a
// built binary, else (go run does not stamp) git in the working directory.
func buildCommit() (rev string, dirty bool) {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
	}
	if rev != "" {
		return rev, dirty
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "git", "rev-parse", "HEAD").Output()
	if err != nil {
		return "", false
	}
	st, err := exec.CommandContext(ctx, "git", "status", "--porcelain", "--untracked-files=no").Output()
	return strings.TrimSpace(string(out)), err == nil && len(strings.TrimSpace(string(st))) > 0
}
