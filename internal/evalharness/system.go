package evalharness

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// System is what a real-CPU scenario measures: Tsubame with a scheduler
// policy, or the same renderer as plain HTTP servers behind nginx.
type System struct {
	// Kind is "tsubame" or "nginx".
	Kind string
	// Policy is Tsubame's scheduler policy (p2c, weighted-random,
	// round-robin) or nginx's balance (round-robin, least_conn).
	Policy string
}

func (s System) String() string { return s.Kind + " " + s.Policy }

// Layout is the members a system starts with.
type Layout struct {
	// CPUs is each member's CPU limit (one entry per member).
	CPUs []float64
	// Split places formula-cache and formula-logic on different nodes
	// (even members cache, odd members logic), so every miss migrates.
	// Only Tsubame can split; a baseline server always runs both.
	Split bool
}

// running is a started system.
type running struct {
	sys     System
	o       Options
	layout  Layout
	c       *cluster // the gateway (Tsubame) or nothing but the CA (nginx)
	ng      *nginx
	servers []*proc // nginx's upstreams, in order
	members []string
	started int
}

// URL is where the load goes.
func (r *running) URL() string {
	if r.ng != nil {
		return r.ng.URL()
	}
	return r.c.URL()
}

// startSystem starts sys with layout: the members in processes of their
// own, each in a CPU-limited group.
func startSystem(ctx context.Context, o Options, sys System, layout Layout) (_ *running, err error) {
	if o.Isolation.None() {
		return nil, fmt.Errorf("no CPU isolation (%s): a real-CPU scenario would measure the shared cores, not the nodes", o.Isolation.Why)
	}
	r := &running{sys: sys, o: o, layout: layout}
	defer func() {
		if err != nil {
			r.stop()
		}
	}()
	po := o
	if sys.Kind == "tsubame" {
		po.Policy = sys.Policy
	}
	r.o = po
	if r.c, err = startCluster(ctx, po, 0); err != nil {
		return nil, err
	}
	var wg sync.WaitGroup
	errs := make([]error, len(layout.CPUs))
	names := make([]string, len(layout.CPUs))
	for i, cpus := range layout.CPUs {
		// Start them together: at a fraction of a core each takes seconds
		// to compile.
		wg.Go(func() { names[i], errs[i] = r.startMember(ctx, i, cpus) })
	}
	wg.Wait()
	r.started = len(layout.CPUs)
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	r.members = names
	// Members finish starting in any order; keep them in name order, so
	// "the last" (kill) is node-N.
	byName := func(a, b *proc) int { return nodeNumber(a.name) - nodeNumber(b.name) }
	slices.SortFunc(r.c.procs, byName)
	slices.SortFunc(r.servers, byName)
	if sys.Kind == "nginx" {
		if r.ng, err = startNginx(ctx, sys.Policy, r.upstreams(), o.Log); err != nil {
			return nil, err
		}
	}
	return r, r.waitServing(ctx)
}

// waitServing sends one request until it is answered correctly: the
// gateway seeing every holder does not mean every node sees every other
// yet (a split placement needs the cache nodes to see a logic node).
func (r *running) waitServing(ctx context.Context) error {
	q := newRequests(r.o, r.URL())
	defer q.client.CloseIdleConnections()
	deadline := time.Now().Add(procReadyTimeout)
	for i := 0; ; i++ {
		res := q.do(ctx, warmBase-1-i)
		if res.Err == "" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not serving after %s: %s", r.sys, procReadyTimeout, res.Err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// startMember starts member i (named node-(i+1)) with cpus.
func (r *running) startMember(ctx context.Context, i int, cpus float64) (string, error) {
	name := fmt.Sprintf("node-%d", i+1)
	if r.sys.Kind == "tsubame" {
		comps := appComponents
		if r.layout.Split {
			comps = appComponents[i%2 : i%2+1]
		}
		p, err := r.c.startNode(ctx, r.o, nodeSpec{name: name, components: comps, cpus: cpus, policy: r.sys.Policy})
		if err != nil {
			return "", err
		}
		return p.name, nil
	}
	p, err := r.startServer(ctx, name, cpus)
	if err != nil {
		return "", err
	}
	r.c.mu.Lock()
	r.servers = append(r.servers, p)
	r.c.mu.Unlock()
	return name, nil
}

// startServer starts a baseline server: `tsubame exec --http`, the same
// wasm components run to completion in one process, no cluster.
func (r *running) startServer(ctx context.Context, name string, cpus float64) (*proc, error) {
	args := []string{"exec", "--http", "127.0.0.1:0"}
	for _, comp := range appComponents {
		file := filepath.Join(r.c.dir, comp+".wasm")
		if _, err := os.Stat(file); err != nil {
			if err := os.WriteFile(file, App.Modules[comp], 0o600); err != nil {
				return nil, err
			}
		}
		args = append(args, "-m", comp+"="+file)
	}
	args = append(args, Route.Component, Route.Kind)
	group, err := r.o.Isolation.New(name, cpus)
	if err != nil {
		return nil, err
	}
	p, err := startProc(ctx, name, r.o.Binary, args, group, r.o.Log, "tsubame exec: serving ")
	if err != nil {
		group.Remove()
		return nil, err
	}
	return p, nil
}

// upstreams are the baseline servers' addresses.
func (r *running) upstreams() []string {
	var us []string
	for _, s := range r.servers {
		if s.cmd.ProcessState == nil { // not exited
			us = append(us, strings.TrimPrefix(s.line[strings.LastIndex(s.line, " ")+1:], "http://"))
		}
	}
	return us
}

// join adds a member with cpus and returns its name once it serves.
func (r *running) join(ctx context.Context, cpus float64) (string, error) {
	r.started++
	name, err := r.startMember(ctx, r.started-1, cpus)
	if err != nil {
		return "", err
	}
	if r.ng != nil {
		return name, r.ng.reload(r.upstreams())
	}
	return name, nil
}

// kill crashes the last member with SIGKILL and returns its name.
func (r *running) kill() string {
	var p *proc
	if r.ng != nil {
		p = r.servers[len(r.servers)-1]
		r.servers = r.servers[:len(r.servers)-1]
	} else {
		p = r.c.procs[len(r.c.procs)-1]
	}
	p.kill()
	return p.name
}

func (r *running) stop() {
	if r.ng != nil {
		r.ng.stop()
	}
	for _, s := range r.servers {
		s.stop()
	}
	if r.c != nil {
		r.c.stop()
	}
}

// nodeNumber is N of "node-N".
func nodeNumber(name string) int {
	n, _ := strconv.Atoi(strings.TrimPrefix(name, "node-"))
	return n
}
