package testutil

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Redis is a redis-server this test started on a free loopback port, with
// no persistence. Stop and Start let a test take it away and bring it back
// on the same port; it is stopped at the end of the test.
type Redis struct {
	t    testing.TB
	Addr string // host:port
	bin  string
	dir  string
	cmd  *exec.Cmd
}

// StartRedis starts redis-server (Debian's package, installed by
// scripts/test.sh under CI=true). Without it the test is skipped, except
// under CI=true, where a missing redis-server fails the test.
func StartRedis(t testing.TB, extra ...string) *Redis {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("redis-server not found under CI=true (scripts/test.sh installs it): %v", err)
		}
		t.Skip("redis-server not installed (apt-get install redis-server, or run scripts/test.sh with CI=true)")
	}
	r := &Redis{t: t, bin: bin, dir: t.TempDir(), Addr: freeLoopbackPort(t)}
	r.Start(extra...)
	t.Cleanup(r.Stop)
	return r
}

// URL is the redis:// URL of database 0.
func (r *Redis) URL() string { return "redis://" + r.Addr + "/0" }

// Start runs the server (again) on r.Addr and waits until it answers PING.
func (r *Redis) Start(extra ...string) {
	r.t.Helper()
	_, port, _ := net.SplitHostPort(r.Addr)
	args := append([]string{"--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", r.dir, "--protected-mode", "no"}, extra...)
	r.cmd = exec.Command(r.bin, args...)
	r.cmd.Stdout, r.cmd.Stderr = nil, nil
	if err := r.cmd.Start(); err != nil {
		r.t.Fatalf("start redis-server: %v", err)
	}
	WaitFor(r.t, "redis-server to answer PING on "+r.Addr, func() bool { return r.Ping() == nil })
}

// Stop kills the server and waits for it to exit. Stopping a stopped
// server does nothing.
func (r *Redis) Stop() {
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	_ = r.cmd.Wait()
	r.cmd = nil
}

// Ping sends PING over a fresh connection (no client library: the helper
// must not depend on the code under test).
func (r *Redis) Ping() error {
	c, err := net.DialTimeout("tcp", r.Addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") {
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
}

// Get reads key with a raw GET (RESP over a fresh connection, no client
// library), for tests that check what a component wrote.
func (r *Redis) Get(key string) (val string, found bool, err error) {
	c, err := net.DialTimeout("tcp", r.Addr, time.Second)
	if err != nil {
		return "", false, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintf(c, "*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n", len(key), key); err != nil {
		return "", false, err
	}
	br := bufio.NewReader(c)
	line, err := br.ReadString('\n')
	if err != nil {
		return "", false, err
	}
	line = strings.TrimRight(line, "\r\n")
	switch {
	case line == "$-1":
		return "", false, nil
	case !strings.HasPrefix(line, "$"):
		return "", false, fmt.Errorf("GET answered %q", line)
	}
	n, err := strconv.Atoi(line[1:])
	if err != nil {
		return "", false, fmt.Errorf("GET answered %q", line)
	}
	buf := make([]byte, n+2)
	if _, err := io.ReadFull(br, buf); err != nil {
		return "", false, err
	}
	return string(buf[:n]), true, nil
}

// freeLoopbackPort returns 127.0.0.1:PORT for a port that was free a moment
// ago (the kernel picked it for a listener that is closed again).
func freeLoopbackPort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}
