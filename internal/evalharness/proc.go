package evalharness

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/tsubame-rt/tsubame/internal/adminapi"
	"github.com/tsubame-rt/tsubame/internal/cpulimit"
)

// proc is a server in a process of its own: a node (`tsubame node
// --config`, the binary and config a user runs) or a baseline server
// (`tsubame exec --http`), optionally in a CPU-limited group.
type proc struct {
	name   string
	line   string // the address line it printed first
	cmd    *exec.Cmd
	group  *cpulimit.Group
	exited chan struct{} // closed when the process has been waited for
}

// procReadyTimeout bounds a process's start-up, compilation included (at a
// quarter of a core, compiling two Go modules takes seconds).
const procReadyTimeout = 2 * time.Minute

// startProc runs bin with args, in group if not nil, and returns once it
// printed a first line starting with prefix.
func startProc(ctx context.Context, name, bin string, args []string, group *cpulimit.Group, log io.Writer, prefix string) (_ *proc, err error) {
	p := &proc{name: name, group: group, exited: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stderr = log
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() { _ = p.cmd.Wait(); close(p.exited) }()
	defer func() {
		if err != nil {
			p.kill()
		}
	}()
	if group != nil {
		// Before it compiles anything: start-up counts against its quota too.
		if err := group.Add(p.cmd.Process.Pid); err != nil {
			return nil, err
		}
	}
	ready := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		ready <- strings.TrimSpace(line)
		_, _ = io.Copy(io.Discard, stdout) // Wait needs the pipe drained
	}()
	timer := time.NewTimer(procReadyTimeout)
	defer timer.Stop()
	select {
	case p.line = <-ready:
		if !strings.HasPrefix(p.line, prefix) {
			return nil, fmt.Errorf("start %s: it said %q (verbose output shows why)", name, p.line)
		}
	case <-timer.C:
		return nil, fmt.Errorf("start %s: not ready after %s", name, procReadyTimeout)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return p, nil
}

// kill ends the process at once (SIGKILL on Unix): a crash.
func (p *proc) kill() {
	_ = p.cmd.Process.Kill()
	<-p.exited
	p.removeGroup()
}

func (p *proc) removeGroup() {
	if p.group != nil {
		_ = p.group.Remove()
		p.group = nil
	}
}

// stop asks the process to stop gracefully (SIGTERM) and kills it if it
// takes too long.
func (p *proc) stop() {
	select {
	case <-p.exited:
		p.removeGroup()
		return
	default:
	}
	_ = p.cmd.Process.Signal(terminate)
	select {
	case <-p.exited:
		p.removeGroup()
	case <-time.After(15 * time.Second):
		p.kill()
	}
}

// nodeSpec is one node process to start.
type nodeSpec struct {
	name       string
	components []string
	cpus       float64 // 0: no limit
	policy     string  // "": the node's default
}

// nodeFile is the part of a node's TOML the harness writes.
type nodeFile struct {
	Name       string            `toml:"name"`
	Listen     string            `toml:"listen"`
	Gossip     string            `toml:"gossip"`
	Admin      string            `toml:"admin"`
	Workers    int               `toml:"workers"`
	Seeds      []string          `toml:"seeds"`
	Components map[string]string `toml:"components"`
	Scheduler  struct {
		Policy string `toml:"policy,omitempty"`
	} `toml:"scheduler"`
	TLS struct {
		CA   string `toml:"ca"`
		Cert string `toml:"cert"`
		Key  string `toml:"key"`
	} `toml:"tls"`
}

// writeNodeConfig writes the node's certificate, key, modules and TOML into
// dir and returns the TOML's path.
func (c *cluster) writeNodeConfig(o Options, dir string, spec nodeSpec, seeds []string) (string, error) {
	certPEM, keyPEM, err := c.Issue(spec.name)
	if err != nil {
		return "", err
	}
	f := nodeFile{Name: spec.name, Listen: "127.0.0.1:0", Gossip: "127.0.0.1:0", Admin: "off", Workers: o.Workers,
		Seeds: seeds, Components: map[string]string{}}
	f.Scheduler.Policy = spec.policy
	f.TLS.CA, f.TLS.Cert, f.TLS.Key = "ca.pem", spec.name+".pem", spec.name+"-key.pem"
	files := map[string][]byte{f.TLS.CA: c.CAPEM(), f.TLS.Cert: certPEM, f.TLS.Key: keyPEM}
	for _, comp := range spec.components {
		f.Components[comp] = comp + ".wasm"
		files[comp+".wasm"] = App.Modules[comp]
	}
	for file, b := range files {
		if err := os.WriteFile(filepath.Join(dir, file), b, 0o600); err != nil {
			return "", err
		}
	}
	var b strings.Builder
	if err := toml.NewEncoder(&b).Encode(f); err != nil {
		return "", err
	}
	path := filepath.Join(dir, spec.name+".toml")
	return path, os.WriteFile(path, []byte(b.String()), 0o600)
}

// startNode starts a node process joining c, in a CPU-limited group when
// spec.cpus > 0, and returns once the gateway and every node of c see it.
func (c *cluster) startNode(ctx context.Context, o Options, spec nodeSpec) (*proc, error) {
	seeds := []string{c.Gateway.GossipAddr()}
	for _, n := range c.Nodes {
		seeds = append(seeds, n.GossipAddr())
	}
	dir := filepath.Join(c.dir, spec.name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	c.mu.Lock() // members may start together; the CA issues one at a time
	config, err := c.writeNodeConfig(o, dir, spec, seeds)
	c.mu.Unlock()
	if err != nil {
		return nil, err
	}
	var group *cpulimit.Group
	if spec.cpus > 0 {
		if group, err = o.Isolation.New(spec.name, spec.cpus); err != nil {
			return nil, err
		}
	}
	p, err := startProc(ctx, spec.name, o.Binary, []string{"node", "--config", config}, group, o.Log, "tsubame node "+spec.name+":")
	if err != nil {
		if group != nil {
			group.Remove()
		}
		return nil, err
	}
	c.mu.Lock()
	c.procs = append(c.procs, p)
	c.mu.Unlock()
	return p, c.waitSeen(ctx, spec.name, spec.components)
}

// waitSeen polls until the gateway lists name as a holder of each of comps
// and every node of c sees it with a fresh report.
func (c *cluster) waitSeen(ctx context.Context, name string, comps []string) error {
	deadline := time.Now().Add(procReadyTimeout)
	for {
		missing := ""
		for _, comp := range comps {
			if !slices.Contains(c.Gateway.Holders(comp), name) {
				missing = "the gateway does not see " + name + " hold " + comp
			}
		}
		for _, n := range c.Nodes {
			if !slices.ContainsFunc(n.Status().Members, func(m adminapi.MemberStatus) bool {
				return m.Name == name && m.Fresh && len(m.Components) > 0
			}) {
				missing = n.Name() + " does not see " + name
			}
		}
		if missing == "" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not seen after %s: %s", name, procReadyTimeout, missing)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}
