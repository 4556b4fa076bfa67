//go:build unix

package e2e

import (
	"fmt"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestStopContinueUnderLoad freezes a node (SIGSTOP) in the middle of a
// load through the gateway, lets it stay frozen long enough to be declared
// dead, then thaws it (SIGCONT): every request still gets its right answer,
// and the thawed node is back in every node's view.
func TestStopContinueUnderLoad(t *testing.T) {
	c := newChaosCluster(t, "node-1", "node-2", "node-3", "gateway")
	hello, _ := filepath.Abs("../testdata/hello.wasm")
	greet, _ := filepath.Abs("../testdata/greet.wasm")
	both := map[string]string{"hello": hello, "greet": greet}
	n1, n2, n3 := c.add("node-1", "127.0.0.1", both), c.add("node-2", "127.0.0.1", both), c.add("node-3", "127.0.0.1", both)
	n2.seeds(n1)
	n3.seeds(n1)
	for _, m := range []*member{n1, n2, n3} {
		c.start(m)
	}
	c.waitConverged("start", n1, n2, n3)
	gw := start(t, c.bin, c.dir, "gateway", "gateway", fmt.Sprintf(`seeds = [%q]
[tls]
ca = %q
cert = %q
key = %q
[http]
listen = "127.0.0.1:0"
[dispatch]
attempts = 6
attempt_timeout = "1s"
`, n1.gossip, filepath.Join(c.certs, "ca.pem"), filepath.Join(c.certs, "gateway.pem"), filepath.Join(c.certs, "gateway-key.pem"))+gatewayRoutes)
	base := regexp.MustCompile(`https?://\S+`).FindString(gw.line)
	client := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	poll(t, 30*time.Second, func() string {
		if code, body, err := get(client, base+"/healthz"); err != nil || code != 200 || !strings.Contains(body, "\nnodes 3\n") {
			return fmt.Sprintf("healthz: %d %q %v", code, body, err)
		}
		return ""
	})

	const total, concurrency = 200, 8
	var done atomic.Int64
	jobs := make(chan int)
	errs := make(chan string, total)
	var load sync.WaitGroup
	for range concurrency {
		load.Add(1)
		go func() {
			defer load.Done()
			for i := range jobs {
				name := fmt.Sprintf("s%d", i)
				code, body, err := get(client, base+"/hello?name="+name)
				if want := "Hello, " + name + "!"; err != nil || code != 200 || body != want {
					errs <- fmt.Sprintf("request %d: %d %q %v, want 200 %q", i, code, body, err, want)
				}
				done.Add(1)
			}
		}()
	}
	stopped, thawed := false, false
	for i := range total {
		switch {
		case !stopped && done.Load() >= total/5:
			c.stop(n2, syscall.SIGSTOP)
			stopped = true
			// Frozen until the others have declared it dead.
			poll(t, 60*time.Second, func() string {
				if strings.Contains(members(c.client, n1.p.field(t, "admin")), "node-2") {
					return "node-1 still lists node-2"
				}
				return ""
			})
			t.Logf("node-2 frozen and declared dead after %d replies", done.Load())
		case stopped && !thawed && done.Load() >= total/2:
			c.stop(n2, syscall.SIGCONT)
			thawed = true
			t.Logf("node-2 thawed after %d replies", done.Load())
		}
		jobs <- i
	}
	close(jobs)
	load.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if !thawed {
		c.stop(n2, syscall.SIGCONT)
		t.Fatal("the load finished before node-2 was frozen and thawed")
	}
	c.waitConverged("after SIGCONT", n1, n2, n3)
}
