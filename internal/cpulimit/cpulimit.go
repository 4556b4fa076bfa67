// Package cpulimit caps the CPU of processes with Linux cgroups, so that
// several processes on one small machine behave like separate, smaller
// machines: cgroup v2's cpu.max where a v2 hierarchy offers the cpu
// controller, v1's cpu controller (cpu.cfs_quota_us) otherwise. The
// evaluation harness puts each node process (and each baseline server) in
// a group of its own.
//
// A quota is a ceiling, not a reservation: on a machine others load too, a
// group may get less than its quota. It never touches groups it did not
// create, and never limits the calling process.
package cpulimit

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// period is the CFS period of every group: 100 ms, the kernel's default.
const period = 100_000 // µs

// weight is the parent group's CPU weight, 8 times the default: on a
// machine others load, the default weight would make the whole group (every
// node together) weigh as much as one of their processes, and no node
// would get its quota. The quotas still cap what the groups take.
const (
	sharesV1 = 8 * 1024 // cpu.shares, default 1024
	weightV2 = 8 * 100  // cpu.weight, default 100
)

// Isolation is the way this machine can limit a process's CPU.
type Isolation struct {
	// Kind is "cgroup v2", "cgroup v1" or "" (none).
	Kind string
	// Why says why there is none (Kind "").
	Why  string
	root string // the hierarchy's mount point holding the cpu controller
	dir  string // this harness's own parent group under root
}

// None reports whether no CPU limit can be enforced.
func (i Isolation) None() bool { return i.Kind == "" }

func (i Isolation) String() string {
	if i.None() {
		return "none (" + i.Why + ")"
	}
	return fmt.Sprintf("%s cpu controller at %s: each group capped by a CFS quota per %d ms period; the groups' parent weighted %dx the default against other work",
		i.Kind, i.root, period/1000, 8)
}

// Detect finds how this machine can limit CPU, and makes this process's
// parent group (named after name and the process ID) to hold the groups
// New makes. Close removes it.
func Detect(name string) Isolation {
	mounts, err := os.Open("/proc/self/mounts")
	if err != nil {
		return Isolation{Why: "no /proc/self/mounts: not Linux?"}
	}
	defer mounts.Close()
	kind, root := findCPU(mounts)
	if kind == "" {
		return Isolation{Why: "no cgroup hierarchy with the cpu controller is mounted"}
	}
	i := Isolation{Kind: kind, root: root, dir: filepath.Join(root, fmt.Sprintf("%s-%d", name, os.Getpid()))}
	if err := os.Mkdir(i.dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return Isolation{Why: fmt.Sprintf("cannot make a group under %s (root needed): %v", root, err)}
	}
	if kind == "cgroup v2" {
		// A v2 group's children get the cpu controller only when their
		// parent enables it for its subtree.
		err = os.WriteFile(filepath.Join(i.dir, "cgroup.subtree_control"), []byte("+cpu"), 0)
		if err == nil {
			err = os.WriteFile(filepath.Join(i.dir, "cpu.weight"), []byte(strconv.Itoa(weightV2)), 0)
		}
	} else {
		err = os.WriteFile(filepath.Join(i.dir, "cpu.shares"), []byte(strconv.Itoa(sharesV1)), 0)
	}
	if err != nil {
		os.Remove(i.dir)
		return Isolation{Why: fmt.Sprintf("cannot set up the cpu controller in %s: %v", i.dir, err)}
	}
	return i
}

// findCPU reads mounts (the format of /proc/self/mounts) and returns the
// hierarchy to use: v2 when its root offers the cpu controller, else v1's
// cpu hierarchy.
func findCPU(mounts io.Reader) (kind, root string) {
	var v1 string
	sc := bufio.NewScanner(mounts)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 {
			continue
		}
		switch f[2] {
		case "cgroup2":
			if b, err := os.ReadFile(filepath.Join(f[1], "cgroup.controllers")); err == nil &&
				hasWord(string(b), "cpu") {
				return "cgroup v2", f[1]
			}
		case "cgroup":
			if hasWord(strings.ReplaceAll(f[3], ",", " "), "cpu") && v1 == "" {
				v1 = f[1]
			}
		}
	}
	if v1 != "" {
		return "cgroup v1", v1
	}
	return "", ""
}

func hasWord(s, w string) bool {
	for _, f := range strings.Fields(s) {
		if f == w {
			return true
		}
	}
	return false
}

// Group is one CPU-limited group.
type Group struct {
	Name string
	CPUs float64
	kind string
	dir  string
}

// New makes the group name capped at cpus CPUs (0.25: a quarter of one
// core's time).
func (i Isolation) New(name string, cpus float64) (*Group, error) {
	if i.None() {
		return nil, errors.New("cpulimit: no isolation: " + i.Why)
	}
	if cpus <= 0 || cpus > 1024 {
		return nil, fmt.Errorf("cpulimit: %g CPUs: want more than 0", cpus)
	}
	g := &Group{Name: name, CPUs: cpus, kind: i.Kind, dir: filepath.Join(i.dir, name)}
	if err := os.Mkdir(g.dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("cpulimit: %w", err)
	}
	quota := int(cpus * period)
	var err error
	if i.Kind == "cgroup v2" {
		err = os.WriteFile(filepath.Join(g.dir, "cpu.max"), fmt.Appendf(nil, "%d %d", quota, period), 0)
	} else {
		err = os.WriteFile(filepath.Join(g.dir, "cpu.cfs_period_us"), []byte(strconv.Itoa(period)), 0)
		if err == nil {
			err = os.WriteFile(filepath.Join(g.dir, "cpu.cfs_quota_us"), []byte(strconv.Itoa(quota)), 0)
		}
	}
	if err != nil {
		os.Remove(g.dir)
		return nil, fmt.Errorf("cpulimit: set the quota of %s: %w", name, err)
	}
	return g, nil
}

// Add moves process pid (all its threads) into the group.
func (g *Group) Add(pid int) error {
	if err := os.WriteFile(filepath.Join(g.dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0); err != nil {
		return fmt.Errorf("cpulimit: add %d to %s: %w", pid, g.Name, err)
	}
	return nil
}

// Path is the group's directory.
func (g *Group) Path() string { return g.dir }

// Remove deletes the group; its processes must have exited.
func (g *Group) Remove() error { return os.Remove(g.dir) }

// Unlimited makes a group with no quota (under the weighted parent) and
// moves this process into it: the harness's gateway and load generator
// then compete with other work on the machine as the nodes do, with no cap.
// Close moves the process back out.
func (i Isolation) Unlimited(name string) (*Group, error) {
	if i.None() {
		return nil, errors.New("cpulimit: no isolation: " + i.Why)
	}
	g := &Group{Name: name, kind: i.Kind, dir: filepath.Join(i.dir, name)}
	if err := os.Mkdir(g.dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("cpulimit: %w", err)
	}
	if err := g.Add(os.Getpid()); err != nil {
		os.Remove(g.dir)
		return nil, err
	}
	return g, nil
}

// Close moves this process back to the hierarchy's root group (if
// Unlimited moved it) and removes the groups left, then the parent group.
// Every process in a group must have exited.
func (i Isolation) Close() error {
	if i.None() {
		return nil
	}
	_ = os.WriteFile(filepath.Join(i.root, "cgroup.procs"), []byte(strconv.Itoa(os.Getpid())), 0)
	if subs, err := os.ReadDir(i.dir); err == nil {
		for _, e := range subs {
			if e.IsDir() {
				_ = os.Remove(filepath.Join(i.dir, e.Name()))
			}
		}
	}
	return os.Remove(i.dir)
}
