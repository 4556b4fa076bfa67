// Package baseline starts the servers `tsubame bench gateway` measures, each
// as a child process so that its CPU can be read apart from the load
// generator's: what a user would deploy instead of Tsubame (nginx, Debian's
// nginx-light, round-robin over N plain Go servers doing the demo's string
// work, with upstream keepalive) and a Tsubame demo cluster.
//
// It never installs anything (scripts/install-bench-tools.sh does), never
// listens beyond 127.0.0.1, and leaves nothing behind: Stop ends every
// process it started and removes the temporary nginx prefix.
package baseline

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/tsubame-rt/tsubame/internal/cputime"
)

// Target is a running server under test: a URL and the processes serving it.
type Target struct {
	URL   string
	procs []*exec.Cmd
	dir   string // removed by Stop
}

// CPU is the CPU the target's processes have used so far; ok is false where
// it cannot be read (outside Linux).
func (t *Target) CPU() (time.Duration, bool) {
	var sum time.Duration
	for _, c := range t.procs {
		d, ok := cputime.Process(c.Process.Pid)
		if !ok {
			return 0, false
		}
		sum += d
	}
	return sum, true
}

// Stop ends the target's processes (SIGTERM, then SIGKILL after grace) and
// removes its files.
func (t *Target) Stop(grace time.Duration) {
	for i := len(t.procs) - 1; i >= 0; i-- {
		stop(t.procs[i], grace)
	}
	if t.dir != "" {
		os.RemoveAll(t.dir)
	}
}

func stop(c *exec.Cmd, grace time.Duration) {
	_ = c.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = c.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(grace):
		_ = c.Process.Kill()
		<-done
	}
}

// readyTimeout bounds a child's start-up (a Tsubame cluster compiles its
// components first).
const readyTimeout = 2 * time.Minute

// start runs bin args with stdout scanned for re's first submatch (the
// address it serves), and stderr kept for the error when it fails.
func start(ctx context.Context, re *regexp.Regexp, bin string, args ...string) (*exec.Cmd, string, error) {
	c := exec.Command(bin, args...)
	out, err := c.StdoutPipe()
	if err != nil {
		return nil, "", err
	}
	var errBuf strings.Builder
	c.Stderr = &limitedWriter{w: &errBuf, n: 8 << 10}
	if err := c.Start(); err != nil {
		return nil, "", err
	}
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		sent := false
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil && !sent {
				found <- m[1]
				sent = true
			}
		}
		if !sent {
			close(found)
		}
	}()
	select {
	case addr, ok := <-found:
		if ok {
			return c, addr, nil
		}
		_ = c.Wait()
		return nil, "", fmt.Errorf("%s exited before serving: %s", filepath.Base(bin), strings.TrimSpace(errBuf.String()))
	case <-ctx.Done():
		stop(c, time.Second)
		return nil, "", ctx.Err()
	case <-time.After(readyTimeout):
		stop(c, time.Second)
		return nil, "", fmt.Errorf("%s did not serve within %s", filepath.Base(bin), readyTimeout)
	}
}

type limitedWriter struct {
	w io.Writer
	n int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if l.n > 0 {
		k := min(len(p), l.n)
		l.n -= k
		_, _ = l.w.Write(p[:k])
	}
	return len(p), nil
}

var (
	plainRE = regexp.MustCompile(`^serving plain net/http on (127\.0\.0\.1:\d+)`)
	demoRE  = regexp.MustCompile(`gateway at (http://127\.0\.0\.1:\d+) `)
)

// Tsubame starts `tsubame demo` with args (nodes, placement...) on a free
// port; bin is the tsubame binary.
func Tsubame(ctx context.Context, bin string, args ...string) (*Target, error) {
	c, url, err := start(ctx, demoRE, bin, append([]string{"demo", "--http", "127.0.0.1:0"}, args...)...)
	if err != nil {
		return nil, err
	}
	return &Target{URL: url, procs: []*exec.Cmd{c}}, nil
}

// Plain starts one plain Go server (`tsubame bench plain`; bin is the
// tsubame binary).
func Plain(ctx context.Context, bin string) (*Target, error) {
	c, addr, err := start(ctx, plainRE, bin, "bench", "plain", "--listen", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	return &Target{URL: "http://" + addr, procs: []*exec.Cmd{c}}, nil
}

// NginxPath finds nginx: on PATH, or where Debian puts it (/usr/sbin is not
// on every user's PATH).
func NginxPath() (string, error) {
	if p, err := exec.LookPath("nginx"); err == nil {
		return p, nil
	}
	if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
		return "/usr/sbin/nginx", nil
	}
	return "", errors.New("nginx is not installed (Debian package nginx-light: scripts/install-bench-tools.sh installs it)")
}

// Nginx starts n plain Go servers (`tsubame bench plain`, bin being the
// tsubame binary) and nginx in front of them: one worker, round-robin,
// upstream keepalive 64, HTTP/1.1 to the upstreams, no access log, as a
// user would set it up.
func Nginx(ctx context.Context, bin string, n int) (_ *Target, err error) {
	nginx, err := NginxPath()
	if err != nil {
		return nil, err
	}
	t := &Target{}
	defer func() {
		if err != nil {
			t.Stop(time.Second)
		}
	}()
	var upstreams []string
	for range n {
		c, addr, err := start(ctx, plainRE, bin, "bench", "plain", "--listen", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		t.procs = append(t.procs, c)
		upstreams = append(upstreams, addr)
	}
	if t.dir, err = os.MkdirTemp("", "tsubame-bench-nginx-"); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	conf := filepath.Join(t.dir, "nginx.conf")
	if err := os.WriteFile(conf, []byte(nginxConf(t.dir, port, upstreams)), 0o600); err != nil {
		return nil, err
	}
	c := exec.Command(nginx, "-p", t.dir, "-c", conf, "-e", filepath.Join(t.dir, "error.log"))
	var errBuf strings.Builder
	c.Stderr = &limitedWriter{w: &errBuf, n: 8 << 10}
	if err := c.Start(); err != nil {
		return nil, fmt.Errorf("start nginx: %w", err)
	}
	t.procs = append(t.procs, c)
	t.URL = fmt.Sprintf("http://127.0.0.1:%d", port)
	if err := waitHTTP(ctx, t.URL+"/"); err != nil {
		log, _ := os.ReadFile(filepath.Join(t.dir, "error.log"))
		return nil, fmt.Errorf("nginx: %w: %s %s", err, strings.TrimSpace(errBuf.String()), strings.TrimSpace(string(log)))
	}
	return t, nil
}

// nginxConf is the whole config: master_process off keeps nginx to one
// process doing what the usual master + one worker do (the master is idle
// under load), so its CPU is one /proc read.
func nginxConf(dir string, port int, upstreams []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "daemon off;\nmaster_process off;\nworker_processes 1;\npid %s/nginx.pid;\nerror_log %s/error.log warn;\n", dir, dir)
	b.WriteString("events { worker_connections 4096; }\nhttp {\n  access_log off;\n")
	fmt.Fprintf(&b, "  client_body_temp_path %s/body;\n  proxy_temp_path %s/proxy;\n", dir, dir)
	b.WriteString("  upstream b {\n")
	for _, u := range upstreams {
		fmt.Fprintf(&b, "    server %s;\n", u)
	}
	b.WriteString("    keepalive 64;\n  }\n")
	fmt.Fprintf(&b, "  server {\n    listen 127.0.0.1:%d;\n    location / {\n      proxy_pass http://b;\n", port)
	b.WriteString("      proxy_http_version 1.1;\n      proxy_set_header Connection \"\";\n    }\n  }\n}\n")
	return b.String()
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// waitHTTP polls url until it answers at all.
func waitHTTP(ctx context.Context, url string) error {
	deadline := time.Now().Add(readyTimeout)
	for {
		res, err := http.Get(url)
		if err == nil {
			res.Body.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}
