//go:build unix

package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// docFiles are the documents whose shell blocks must be marked, relative to
// the repository root.
var docFiles = []string{"README.md", "docs/*.md", "abi/*.md"}

// docSessionTimeout bounds one session unless its first block says
// timeout=DURATION.
const docSessionTimeout = 3 * time.Minute

// TestDocs runs every fenced block marked doctest in README.md and docs/*.md
// (docs/contributing.md has the convention) in a fresh copy of the
// repository, with the built binary at bin/tsubame and on PATH, and fails on
// any shell block that is marked neither doctest nor norun: nothing a user
// is told to type can drift from what the code does without a test failing.
func TestDocs(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("bash"); err != nil {
		t.Fatal("the doc tests need bash:", err)
	}
	var files []string
	for _, g := range docFiles {
		m, err := filepath.Glob(filepath.Join(root, g))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	type session struct {
		name   string
		blocks []block
	}
	var sessions []*session
	var unmarked []string
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, f)
		blocks, err := parseBlocks(rel, string(src))
		if err != nil {
			t.Fatal(err)
		}
		byName := map[string]*session{}
		for _, b := range blocks {
			switch {
			case b.run:
				name := b.session
				if name == "" {
					name = strconv.Itoa(b.line)
				}
				s := byName[name]
				if s == nil {
					s = &session{name: rel + ":" + name}
					byName[name] = s
					sessions = append(sessions, s)
				}
				s.blocks = append(s.blocks, b)
			case b.norun:
			case b.isShell():
				unmarked = append(unmarked, fmt.Sprintf("%s:%d", rel, b.line))
			}
		}
	}
	if len(unmarked) > 0 {
		t.Errorf("shell blocks marked neither doctest nor norun (docs/contributing.md, \"Docs that run\"):\n  %s", strings.Join(unmarked, "\n  "))
	}
	if len(sessions) == 0 {
		t.Fatal("no doctest blocks found: the doc tests would check nothing")
	}
	bin := binary(t)
	for _, s := range sessions {
		t.Run(strings.NewReplacer("/", "_", ".md", "").Replace(s.name), func(t *testing.T) {
			runSession(t, root, bin, s.blocks)
		})
	}
}

// runSession runs the blocks of one session as one bash script in a fresh
// copy of the repository.
func runSession(t *testing.T, root, bin string, blocks []block) {
	require := os.Getenv("TSUBAME_REQUIRE_TOOLCHAINS") == "1"
	for _, b := range blocks {
		for _, prog := range b.needs {
			if _, err := exec.LookPath(prog); err != nil {
				msg := fmt.Sprintf("%s:%d needs %s, which is not on PATH (make toolchains installs it)", b.file, b.line, prog)
				if require {
					t.Fatal(msg)
				}
				t.Skip(msg)
			}
		}
	}
	timeout := docSessionTimeout
	if b := blocks[0]; b.timeout != "" {
		d, err := time.ParseDuration(b.timeout)
		if err != nil {
			t.Fatalf("%s:%d: timeout=%s: %v", b.file, b.line, b.timeout, err)
		}
		timeout = d
	}
	work := filepath.Join(t.TempDir(), "tsubame")
	if err := copyTree(root, work); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(work, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := copyFile(bin, filepath.Join(work, "bin", "tsubame"), 0o755); err != nil {
		t.Fatal(err)
	}
	outDir := t.TempDir()

	// One script: sh blocks as they are, console blocks as one command per
	// `$ ` line with its output kept for comparison.
	ports := map[string]string{}
	var script strings.Builder
	script.WriteString("set -euo pipefail\n")
	type check struct {
		where  string
		cmd    string
		expect []string
		out    string
	}
	var checks []check
	for _, b := range blocks {
		text, err := remapPorts(b.text, ports, freePort)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&script, "\n# --- %s:%d\n", b.file, b.line)
		if b.lang != "console" {
			script.WriteString(text)
			continue
		}
		for _, st := range parseConsole(text) {
			out := filepath.Join(outDir, strconv.Itoa(len(checks)))
			checks = append(checks, check{where: fmt.Sprintf("%s:%d", b.file, b.line), cmd: st.cmd, expect: st.expect, out: out})
			fmt.Fprintf(&script, "{ %s\n} >%q 2>&1 || { cat %q; exit 1; }\n", st.cmd, out, out)
		}
	}
	if len(ports) > 0 {
		t.Logf("loopback ports remapped to free ones: %v", ports)
	}

	logPath := filepath.Join(outDir, "log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	cmd := exec.Command("bash", "-c", script.String())
	cmd.Dir = work
	cmd.Stdout, cmd.Stderr = logf, logf // files, so background jobs cannot hold Wait
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Env = docEnv(work)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Everything the script started in the background is in its process
	// group: stop it all when the script ends or the session times out.
	defer stopGroup(cmd.Process.Pid)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var runErr error
	select {
	case runErr = <-done:
	case <-ctx.Done():
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		runErr = fmt.Errorf("timed out after %s", timeout)
	}
	log, _ := os.ReadFile(logPath)
	var diffs []string
	for _, c := range checks {
		got, err := os.ReadFile(c.out)
		if errors.Is(err, fs.ErrNotExist) {
			continue // the script stopped before this command
		}
		if d := matchOutput(c.expect, string(got)); d != "" {
			diffs = append(diffs, fmt.Sprintf("%s: $ %s\n%s", c.where, c.cmd, d))
		}
	}
	if runErr != nil || len(diffs) > 0 {
		t.Errorf("script (run in a copy of the repository, %s):\n%s\n--- output (last 6000 bytes) ---\n%s", work, script.String(), tail(log, 6000))
		if runErr != nil {
			t.Errorf("script: %v", runErr)
		}
		for _, d := range diffs {
			t.Errorf("output differs from the doc at %s", d)
		}
	}
}

// docEnv is the test's environment with bin/ of the work copy first on PATH
// and no TSUBAME_* settings of the person running the tests, nor the make
// variables of a `make test` around it (a nested make would print
// "Entering directory" lines a reader running the doc never sees).
func docEnv(work string) []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(name, "TSUBAME_"), name == "PATH",
			name == "MAKELEVEL", name == "MAKEFLAGS", name == "MFLAGS", name == "MAKEOVERRIDES":
			continue
		}
		env = append(env, kv)
	}
	return append(env, "PATH="+filepath.Join(work, "bin")+string(os.PathListSeparator)+os.Getenv("PATH"))
}

// stopGroup ends a session's process group: SIGTERM, so members stop as a
// user's Ctrl-C would stop them, then SIGKILL for whatever is left.
func stopGroup(pgid int) {
	if syscall.Kill(-pgid, syscall.SIGTERM) != nil {
		return
	}
	for i := 0; i < 100; i++ {
		if syscall.Kill(-pgid, 0) != nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}

// freePort returns a loopback port free for both TCP and UDP at the time of
// the call (gossip and the gateway's HTTP/3 use both on one number). A
// session binds its ports only once its members start, seconds later on a
// loaded machine, so the port is drawn below the kernel's ephemeral range
// (ip_local_port_range): no other test's ":0" listener or outgoing
// connection can take it meanwhile.
func freePort() (int, error) {
	low := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil && n > 11000 {
				low = n
			}
		}
	}
	for i := 0; i < 200; i++ {
		port := 10000 + rand.IntN(low-10000)
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		u, err := net.ListenPacket("udp", addr)
		l.Close()
		if err == nil {
			u.Close()
			return port, nil
		}
	}
	return 0, errors.New("no loopback port below the ephemeral range free for both TCP and UDP")
}

// copyTree copies the repository's files into dst, leaving out .git, bin and
// build outputs, so a session starts from a clean checkout.
func copyTree(src, dst string) error {
	skip := map[string]bool{".git": true, "bin": true, "node_modules": true, "target": true}
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if d.IsDir() && skip[d.Name()] && rel != "." {
			return filepath.SkipDir
		}
		to := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(to, 0o755)
		case d.Type().IsRegular():
			info, err := d.Info()
			if err != nil {
				return err
			}
			return copyFile(path, to, info.Mode().Perm())
		}
		return nil // symlinks and the like: no checkout needs them
	})
}

func copyFile(src, dst string, mode fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func TestParseBlocks(t *testing.T) {
	src := "x\n```sh doctest=a needs=clang timeout=5m\necho hi\n```\n\n```\ntsubame status\n```\n\n```text\ntsubame status\n```\n" +
		"````console norun\n$ make demo\n````\n"
	bs, err := parseBlocks("f.md", src)
	if err != nil {
		t.Fatal(err)
	}
	if len(bs) != 4 {
		t.Fatalf("got %d blocks, want 4: %+v", len(bs), bs)
	}
	if b := bs[0]; !b.run || b.session != "a" || b.line != 2 || b.text != "echo hi\n" || b.timeout != "5m" || len(b.needs) != 1 {
		t.Errorf("block 0: %+v", b)
	}
	if !bs[1].isShell() || bs[2].isShell() || !bs[3].norun {
		t.Errorf("shell detection: %v %v %v", bs[1].isShell(), bs[2].isShell(), bs[3].norun)
	}
	for _, bad := range []string{"```sh doctets\n```\n", "```toml doctest\n```\n", "```sh doctest norun\n```\n", "```sh\n"} {
		if _, err := parseBlocks("f.md", bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestConsoleMatch(t *testing.T) {
	steps := parseConsole("$ a \\\n  b\nout1\n...\nlast 1...9\n$ c\n")
	if len(steps) != 2 || steps[0].cmd != "a \\\n  b" || len(steps[0].expect) != 3 || steps[1].cmd != "c" {
		t.Fatalf("%+v", steps)
	}
	for _, tc := range []struct {
		got string
		ok  bool
	}{
		{"out1\nlast 129\n", true},
		{"out1\nx\ny\nlast 19  \n", true},
		{"out1\nlast 12\n", false},
		{"out2\nlast 19\n", false},
		{"out1\nlast 19\nmore\n", false},
	} {
		if d := matchOutput(steps[0].expect, tc.got); (d == "") != tc.ok {
			t.Errorf("%q: match %v, want %v (%s)", tc.got, d == "", tc.ok, d)
		}
	}
	if matchOutput(nil, "") != "" || matchOutput(nil, "x") == "" {
		t.Error("no expected output must match only no output")
	}
}

func TestRemapPorts(t *testing.T) {
	next := 40000
	free := func() (int, error) { next++; return next, nil }
	ports := map[string]string{}
	a, _ := remapPorts(`listen = "127.0.0.1:7450" admin 127.0.0.1:0 x localhost:7450 y 127.0.0.1:80`, ports, free)
	b, _ := remapPorts(`--admin 127.0.0.1:7450 127.0.0.1:8080`, ports, free)
	if a != `listen = "127.0.0.1:40001" admin 127.0.0.1:0 x localhost:40001 y 127.0.0.1:80` || b != `--admin 127.0.0.1:40001 127.0.0.1:40002` {
		t.Errorf("got %q and %q", a, b)
	}
	keys := make([]string, 0, len(ports))
	for k := range ports {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if strings.Join(keys, ",") != "7450,8080" {
		t.Errorf("ports %v", ports)
	}
}
