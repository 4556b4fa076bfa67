package cpulimit

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestFindCPU(t *testing.T) {
	v1 := `tmpfs /sys/fs/cgroup tmpfs rw 0 0
cgroup /sys/fs/cgroup/cpuacct cgroup rw,relatime,cpuacct 0 0
cgroup /sys/fs/cgroup/cpu cgroup rw,relatime,cpu 0 0
`
	if kind, root := findCPU(strings.NewReader(v1)); kind != "cgroup v1" || root != "/sys/fs/cgroup/cpu" {
		t.Fatalf("v1: %q %q", kind, root)
	}
	if kind, _ := findCPU(strings.NewReader("proc /proc proc rw 0 0\n")); kind != "" {
		t.Fatalf("no cgroups: %q", kind)
	}
	// A v2 mount whose controllers lack cpu is passed over for v1.
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "cgroup.controllers"), []byte("memory pids"), 0o644)
	if kind, _ := findCPU(strings.NewReader("cgroup2 " + dir + " cgroup2 rw 0 0\n" + v1)); kind != "cgroup v1" {
		t.Fatalf("v2 without cpu: %q", kind)
	}
	os.WriteFile(filepath.Join(dir, "cgroup.controllers"), []byte("cpuset cpu io"), 0o644)
	if kind, root := findCPU(strings.NewReader("cgroup2 " + dir + " cgroup2 rw 0 0\n" + v1)); kind != "cgroup v2" || root != dir {
		t.Fatalf("v2 with cpu: %q %q", kind, root)
	}
}

// TestGroup puts a real process in a real group, where the machine allows
// it (Linux, root, a cpu hierarchy).
func TestGroup(t *testing.T) {
	iso := Detect("tsubame-cpulimit-test")
	if iso.None() {
		t.Skip("no CPU isolation here:", iso.Why)
	}
	t.Cleanup(func() {
		if err := iso.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	g, err := iso.New("g1", 0.25)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait(); g.Remove() }()
	if err := g.Add(cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("/proc/" + itoa(cmd.Process.Pid) + "/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	rel := strings.TrimPrefix(g.Path(), iso.root)
	if !strings.Contains(string(b), rel) {
		t.Fatalf("process cgroups %q lack %q", b, rel)
	}
	var quota string
	if iso.Kind == "cgroup v2" {
		q, _ := os.ReadFile(filepath.Join(g.Path(), "cpu.max"))
		quota = string(q)
	} else {
		q, _ := os.ReadFile(filepath.Join(g.Path(), "cpu.cfs_quota_us"))
		quota = string(q)
	}
	if !strings.HasPrefix(strings.TrimSpace(quota), "25000") {
		t.Fatalf("quota %q, want 25000", quota)
	}
	if _, err := iso.New("g2", 0); err == nil {
		t.Fatal("0 CPUs accepted")
	}
	// This process in an unlimited group, and back out on Close.
	u, err := iso.Unlimited("self")
	if err != nil {
		t.Fatal(err)
	}
	self, _ := os.ReadFile("/proc/self/cgroup")
	if !strings.Contains(string(self), strings.TrimPrefix(u.Path(), iso.root)) {
		t.Fatalf("this process's cgroups %q lack %s", self, u.Path())
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
