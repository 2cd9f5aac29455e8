package main

import (
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestMachineMetaNamesTheMachineAndTheRun(t *testing.T) {
	m := machineMeta(time.Now())
	if m["cpus"] != runtime.NumCPU() || m["go"] != runtime.Version() || m["started_at"] == "" {
		t.Fatalf("meta lacks the basics: %v", m)
	}
	if runtime.GOOS == "linux" {
		if m["mem_total_mb"] == nil || m["load_avg_1m_start"] == nil {
			t.Fatalf("meta lacks /proc figures on linux: %v", m)
		}
		if readCPUTimes().total == 0 {
			t.Fatal("no CPU times read from /proc/stat")
		}
	}
	finishMeta(m, cpuTimes{})
	if share, ok := m["cpu_steal_share"].(float64); runtime.GOOS == "linux" && (!ok || share < 0 || share > 1) {
		t.Fatalf("steal share %v", m["cpu_steal_share"])
	}
	line := machineLine(m)
	if !strings.HasPrefix(line, "machine:") || !strings.Contains(line, "cpus=") {
		t.Fatalf("summary line %q", line)
	}
}
