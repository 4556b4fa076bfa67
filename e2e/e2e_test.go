//go:build unix

package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tsubame-rt/tsubame/internal/testutil"
)

// binary returns the tsubame binary: $TSUBAME_BIN (make test builds it) or
// a fresh build into the test's temp dir.
func binary(t *testing.T) string {
	return testutil.Binary(t)
}

// tsubame runs a short command of the binary and returns its stdout.
func tsubame(t *testing.T, bin string, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("tsubame %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}

// proc is one long-running member process.
type proc struct {
	name string
	cmd  *exec.Cmd
	line string // its "tsubame node|gateway NAME: ..." address line
	log  string // its stderr file
}

var addrLine = regexp.MustCompile(`^tsubame (node|gateway) `)

// start runs `tsubame KIND --config FILE` in its own process group, waits
// for its address line, and kills the group when the test ends.
func start(t *testing.T, bin, dir, name, kind, config string) *proc {
	t.Helper()
	return startWrapped(t, nil, bin, dir, name, kind, config)
}

// startWrapped is start with the command run through wrap (e.g. `ip netns
// exec NS`, which execs it in place, so the process group is still its own).
func startWrapped(t *testing.T, wrap []string, bin, dir, name, kind, config string) *proc {
	t.Helper()
	cfg := filepath.Join(dir, name+".toml")
	if err := os.WriteFile(cfg, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	p := &proc{name: name, log: filepath.Join(dir, name+".log")}
	logf, err := os.Create(p.log)
	if err != nil {
		t.Fatal(err)
	}
	argv := append(slices.Clone(wrap), bin, kind, "--config", cfg)
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Stderr = logf
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		_ = p.cmd.Wait()
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(p.log)
			t.Logf("--- %s log (last 3000 bytes) ---\n%s", name, tail(b, 3000))
		}
	})
	// The first address line goes to lines; everything after it is read
	// and dropped, so the child never blocks on a full stdout pipe.
	lines := make(chan string, 1)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if addrLine.MatchString(sc.Text()) {
				lines <- sc.Text()
				break
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case l, ok := <-lines:
		if !ok {
			b, _ := os.ReadFile(p.log)
			t.Fatalf("%s exited before it was up:\n%s", name, tail(b, 3000))
		}
		p.line = l
	case <-time.After(60 * time.Second):
		t.Fatalf("%s printed no address line within 60s", name)
	}
	return p
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// field returns the word after key in an address line: "gossip 127.0.0.1:1234".
func (p *proc) field(t *testing.T, key string) string {
	t.Helper()
	f := strings.Fields(p.line)
	for i := 0; i+1 < len(f); i++ {
		if f[i] == key {
			return f[i+1]
		}
	}
	t.Fatalf("%s: no %q in %q", p.name, key, p.line)
	return ""
}

// poll calls cond until it returns "" (done) or the deadline passes; the
// last non-empty answer says what was still missing.
func poll(t *testing.T, within time.Duration, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		missing := cond()
		if missing == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", within, missing)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func nodeConfig(name, certs, seed string, components map[string]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "name = %q\nlisten = \"127.0.0.1:0\"\ngossip = \"127.0.0.1:0\"\nadmin = \"127.0.0.1:0\"\nworkers = 2\n", name)
	if seed != "" {
		fmt.Fprintf(&b, "seeds = [%q]\n", seed)
	}
	fmt.Fprintf(&b, "[tls]\nca = %q\ncert = %q\nkey = %q\n",
		filepath.Join(certs, "ca.pem"), filepath.Join(certs, name+".pem"), filepath.Join(certs, name+"-key.pem"))
	b.WriteString("[components]\n")
	for c, path := range components {
		fmt.Fprintf(&b, "%s = %q\n", c, path)
	}
	return b.String()
}

// gatewayConfig is the start of a gateway's TOML: its seed, its certificate
// under the test CA and an HTTP listener on a free port; a test appends the
// rest of [http] and its other sections.
func gatewayConfig(certs, seed string) string {
	return fmt.Sprintf("seeds = [%q]\n[tls]\nca = %q\ncert = %q\nkey = %q\n[http]\nlisten = \"127.0.0.1:0\"\n",
		seed, filepath.Join(certs, "ca.pem"), filepath.Join(certs, "gateway.pem"), filepath.Join(certs, "gateway-key.pem"))
}

const gatewayRoutes = `
[[route]]
method = "GET"
path = "/hello"
component = "hello"
kind = "say"
input = "query:name"

[[route]]
method = "POST"
path = "/hello"
component = "hello"
kind = "say"
input = "body"

[[route]]
method = "GET"
path = "/absent"
component = "absent"
kind = "any"
`

// freshPeers counts the other nodes (not gateways) a node's admin API shows
// with a fresh report and their components.
func freshPeers(client *http.Client, admin string) int {
	code, body, err := get(client, "http://"+admin+"/v1/status")
	if err != nil || code != 200 {
		return -1
	}
	var st struct {
		Members []struct {
			Self, Gateway, Fresh bool
			Components           []struct{ Name string }
		}
	}
	if json.Unmarshal([]byte(body), &st) != nil {
		return -1
	}
	n := 0
	for _, m := range st.Members {
		if !m.Self && !m.Gateway && m.Fresh && len(m.Components) > 0 {
			n++
		}
	}
	return n
}

func get(client *http.Client, url string) (int, string, error) {
	res, err := client.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res.StatusCode, string(b), err
}

// TestKillNodeMidRun is the paper's fault-tolerance claim on real
// processes: three nodes and a gateway from TOML files, a few hundred
// concurrent requests, one node SIGKILLed in the middle. Every request must
// still get its right answer (the gateway resends what the dead node held),
// and the dead node must drop out of `tsubame status`.
func TestKillNodeMidRun(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four processes")
	}
	bin := binary(t)
	dir := t.TempDir()
	certs := filepath.Join(dir, "certs")
	tsubame(t, bin, "ca", "init", "--dir", certs)
	for _, name := range []string{"node-1", "node-2", "node-3", "gateway"} {
		tsubame(t, bin, "ca", "issue", "--dir", certs, name)
	}
	hello, _ := filepath.Abs("../testdata/hello.wasm")
	greet, _ := filepath.Abs("../testdata/greet.wasm")

	// node-2 holds both components, so it gets work at both steps; the
	// others keep one holder of each alive after it dies.
	n1 := start(t, bin, dir, "node-1", "node", nodeConfig("node-1", certs, "", map[string]string{"hello": hello}))
	seed := n1.field(t, "gossip")
	var n2, n3 *proc
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		n2 = start(t, bin, dir, "node-2", "node", nodeConfig("node-2", certs, seed, map[string]string{"hello": hello, "greet": greet}))
	}()
	go func() {
		defer wg.Done()
		n3 = start(t, bin, dir, "node-3", "node", nodeConfig("node-3", certs, seed, map[string]string{"greet": greet}))
	}()
	wg.Wait()
	if n2 == nil || n3 == nil {
		t.FailNow()
	}
	gw := start(t, bin, dir, "gateway", "gateway", gatewayConfig(certs, seed)+`max_body_bytes = 1024
[dispatch]
attempts = 4
attempt_timeout = "1s"
`+gatewayRoutes)
	base := regexp.MustCompile(`https?://\S+`).FindString(gw.line)
	if base == "" {
		t.Fatalf("no URL in the gateway's line %q", gw.line)
	}
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 32}}

	// Ready: the gateway sees three nodes, and every node sees the other two
	// with fresh reports and their components (else a first request could
	// meet a node that does not know greet's holders yet).
	poll(t, 30*time.Second, func() string {
		code, body, err := get(client, base+"/healthz")
		if err != nil || code != 200 || !strings.Contains(body, "\nnodes 3\n") {
			return fmt.Sprintf("healthz: %d %q %v", code, body, err)
		}
		for _, n := range []*proc{n1, n2, n3} {
			if seen := freshPeers(client, n.field(t, "admin")); seen != 2 {
				return fmt.Sprintf("%s sees %d fresh nodes", n.name, seen)
			}
		}
		return ""
	})

	t.Run("negative", func(t *testing.T) {
		if code, body, _ := get(client, base+"/absent"); code != 503 || !strings.Contains(body, "component absent") {
			t.Errorf("no holder: %d %q, want 503 naming component absent", code, body)
		}
		if code, _, _ := get(client, base+"/nowhere"); code != 404 {
			t.Errorf("unknown route: %d, want 404", code)
		}
		res, err := client.Post(base+"/hello", "text/plain", strings.NewReader(strings.Repeat("x", 2000)))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 413 || !strings.Contains(string(b), "1024 bytes") {
			t.Errorf("big body: %d %q, want 413", res.StatusCode, b)
		}
		res, err = client.Post(base+"/hello", "text/plain", strings.NewReader("post"))
		if err != nil {
			t.Fatal(err)
		}
		b, _ = io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || string(b) != "Hello, post!" {
			t.Errorf("after 413: %d %q", res.StatusCode, b)
		}
		if code, body, _ := get(client, base+"/hello"); code != 400 || !strings.Contains(body, "empty name") {
			t.Errorf("greet's own 400: %d %q", code, body)
		}
	})

	const total, concurrency, killAfter = 300, 16, 100
	var done, failed atomic.Int64
	jobs := make(chan int)
	errs := make(chan string, total)
	var load sync.WaitGroup
	for w := 0; w < concurrency; w++ {
		load.Add(1)
		go func() {
			defer load.Done()
			for i := range jobs {
				name := fmt.Sprintf("r%d", i)
				code, body, err := get(client, base+"/hello?name="+name)
				if want := "Hello, " + name + "!"; err != nil || code != 200 || body != want {
					failed.Add(1)
					errs <- fmt.Sprintf("request %d: %d %q %v, want 200 %q", i, code, body, err, want)
				}
				done.Add(1)
			}
		}()
	}
	killed := false
	for i := 0; i < total; i++ {
		if !killed && done.Load() >= killAfter {
			if err := syscall.Kill(-n2.cmd.Process.Pid, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			killed = true
			t.Logf("killed node-2 after %d replies", done.Load())
		}
		jobs <- i
	}
	close(jobs)
	load.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if !killed {
		t.Fatal("the load finished before node-2 was killed")
	}
	_, health, _ := get(client, base+"/healthz")
	t.Logf("gateway after the run:\n%s", health)

	admin := n1.field(t, "admin")
	poll(t, 30*time.Second, func() string {
		out := tsubame(t, bin, "status", "--admin", admin)
		if strings.Contains(out, "node-2") || !strings.Contains(out, "node-3") {
			return "status still lists node-2 (or lost node-3):\n" + out
		}
		return ""
	})
}
