package evalharness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// nginx is a real nginx (Debian's nginx-light; scripts/install-nginx.sh)
// balancing over baseline servers: one worker, upstream keepalive, no
// access log, as a careful operator would run it on a small machine.
type nginx struct {
	dir, conf string
	balance   string // "round-robin" or "least_conn"
	addr      string
	cmd       *exec.Cmd
	exited    chan struct{}
}

// Balances are the nginx upstream methods the harness compares.
var Balances = []string{"round-robin", "least_conn"}

// NginxBinary finds nginx, or says how to install it.
func NginxBinary() (string, error) {
	for _, p := range []string{"nginx", "/usr/sbin/nginx"} {
		if bin, err := exec.LookPath(p); err == nil {
			return bin, nil
		}
	}
	return "", errors.New("nginx is not installed (scripts/install-nginx.sh installs Debian's nginx-light)")
}

// nginxConf is the configuration for upstreams behind addr.
func nginxConf(dir, addr, balance string, upstreams []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "worker_processes 1;\npid %s/nginx.pid;\nerror_log %s/error.log warn;\ndaemon off;\n", dir, dir)
	b.WriteString("events { worker_connections 4096; }\nhttp {\n  access_log off;\n")
	for _, t := range []string{"client_body", "proxy", "fastcgi", "uwsgi", "scgi"} {
		fmt.Fprintf(&b, "  %s_temp_path %s/%s;\n", t, dir, t)
	}
	b.WriteString("  upstream backend {\n")
	if balance == "least_conn" {
		b.WriteString("    least_conn;\n")
	}
	for _, u := range upstreams {
		fmt.Fprintf(&b, "    server %s max_fails=1 fail_timeout=2s;\n", u)
	}
	b.WriteString("    keepalive 64;\n  }\n")
	fmt.Fprintf(&b, "  server {\n    listen %s;\n    location / {\n      proxy_pass http://backend;\n", addr)
	b.WriteString("      proxy_http_version 1.1;\n      proxy_set_header Connection \"\";\n    }\n  }\n}\n")
	return b.String()
}

// startNginx starts nginx balancing over upstreams on a free loopback port.
func startNginx(ctx context.Context, balance string, upstreams []string, log io.Writer) (_ *nginx, err error) {
	bin, err := NginxBinary()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "tsubame-nginx-")
	if err != nil {
		return nil, err
	}
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	n := &nginx{dir: dir, conf: filepath.Join(dir, "nginx.conf"), balance: balance, addr: addr, exited: make(chan struct{})}
	if err := os.WriteFile(n.conf, []byte(nginxConf(dir, addr, balance, upstreams)), 0o600); err != nil {
		return nil, err
	}
	n.cmd = exec.Command(bin, "-p", dir, "-c", n.conf, "-e", filepath.Join(dir, "error.log"))
	n.cmd.Stdout, n.cmd.Stderr = log, log
	if err := n.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start nginx: %w", err)
	}
	go func() { _ = n.cmd.Wait(); close(n.exited) }()
	defer func() {
		if err != nil {
			n.stop()
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return n, nil
		}
		select {
		case <-n.exited:
			b, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			return nil, fmt.Errorf("nginx exited: %s", strings.TrimSpace(string(b)))
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return nil, errors.New("nginx: not listening after 10s")
		}
	}
}

// reload points nginx at a new set of upstreams (a new worker takes over;
// the old one finishes its requests).
func (n *nginx) reload(upstreams []string) error {
	if err := os.WriteFile(n.conf, []byte(nginxConf(n.dir, n.addr, n.balance, upstreams)), 0o600); err != nil {
		return err
	}
	return n.cmd.Process.Signal(reloadSignal)
}

// URL is nginx's base URL.
func (n *nginx) URL() string { return "http://" + n.addr }

func (n *nginx) stop() {
	_ = n.cmd.Process.Signal(terminate)
	select {
	case <-n.exited:
	case <-time.After(10 * time.Second):
		_ = n.cmd.Process.Kill()
		<-n.exited
	}
	os.RemoveAll(n.dir)
}

// freePort returns a loopback address nobody listens on now.
func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}
