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
)

// nodeProc is a node in a process of its own: `tsubame node --config`,
// the binary and config a user runs.
type nodeProc struct {
	name   string
	dir    string
	cmd    *exec.Cmd
	exited chan struct{} // closed when the process has been waited for
}

// procReadyTimeout bounds a node process's start-up, compilation included.
const procReadyTimeout = time.Minute

// nodeFile is the part of a node's TOML the harness writes.
type nodeFile struct {
	Name       string            `toml:"name"`
	Listen     string            `toml:"listen"`
	Gossip     string            `toml:"gossip"`
	Admin      string            `toml:"admin"`
	Workers    int               `toml:"workers"`
	Seeds      []string          `toml:"seeds"`
	Components map[string]string `toml:"components"`
	TLS        struct {
		CA   string `toml:"ca"`
		Cert string `toml:"cert"`
		Key  string `toml:"key"`
	} `toml:"tls"`
}

// writeNodeConfig writes name's certificate, key, the app's modules and
// its TOML into dir and returns the TOML's path.
func (c *cluster) writeNodeConfig(o Options, dir, name string, seeds []string) (string, error) {
	certPEM, keyPEM, err := c.Issue(name)
	if err != nil {
		return "", err
	}
	f := nodeFile{Name: name, Listen: "127.0.0.1:0", Gossip: "127.0.0.1:0", Admin: "off", Workers: o.Workers,
		Seeds: seeds, Components: map[string]string{}}
	f.TLS.CA, f.TLS.Cert, f.TLS.Key = "ca.pem", name+".pem", name+"-key.pem"
	files := map[string][]byte{f.TLS.CA: c.CAPEM(), f.TLS.Cert: certPEM, f.TLS.Key: keyPEM}
	for comp, mod := range App.Modules {
		f.Components[comp] = comp + ".wasm"
		files[comp+".wasm"] = mod
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
	path := filepath.Join(dir, name+".toml")
	return path, os.WriteFile(path, []byte(b.String()), 0o600)
}

// startProc starts node name in its own process, joining c, and returns
// once the gateway and every node of c see it.
func (c *cluster) startProc(ctx context.Context, o Options, name string) (_ *nodeProc, err error) {
	dir, err := os.MkdirTemp("", "tsubame-eval-")
	if err != nil {
		return nil, err
	}
	seeds := []string{c.Gateway.GossipAddr()}
	for _, n := range c.Nodes {
		seeds = append(seeds, n.GossipAddr())
	}
	config, err := c.writeNodeConfig(o, dir, name, seeds)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	p := &nodeProc{name: name, dir: dir, exited: make(chan struct{})}
	p.cmd = exec.Command(o.Binary, "node", "--config", config)
	p.cmd.Stderr = o.Log
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := p.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() { _ = p.cmd.Wait(); close(p.exited) }()
	c.procs = append(c.procs, p)
	ready := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		ready <- strings.TrimSpace(line)
		_, _ = io.Copy(io.Discard, stdout) // Wait needs the pipe drained
	}()
	timer := time.NewTimer(procReadyTimeout)
	defer timer.Stop()
	select {
	case line := <-ready:
		if !strings.HasPrefix(line, "tsubame node "+name+":") {
			return nil, fmt.Errorf("start %s: it said %q (verbose output shows why)", name, line)
		}
	case <-timer.C:
		return nil, fmt.Errorf("start %s: not ready after %s", name, procReadyTimeout)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return p, c.waitSeen(ctx, name)
}

// waitSeen polls until the gateway lists name as a holder of every
// component and every node of c sees it with a fresh report.
func (c *cluster) waitSeen(ctx context.Context, name string) error {
	deadline := time.Now().Add(procReadyTimeout)
	for {
		missing := ""
		for comp := range App.Modules {
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

// kill ends the process at once (SIGKILL on Unix): a crash.
func (p *nodeProc) kill() {
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// stop asks the process to leave the cluster (SIGTERM: a graceful stop)
// and kills it if it takes too long; its files go.
func (p *nodeProc) stop() {
	defer os.RemoveAll(p.dir)
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(terminate)
	select {
	case <-p.exited:
	case <-time.After(15 * time.Second):
		p.kill()
	}
}
