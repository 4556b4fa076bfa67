//go:build unix

package e2e

import (
	"fmt"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tsubame-rt/tsubame/internal/testutil"
)

// TestEffectsOnceUnderFaults is issue 12's fault test on real processes:
// three nodes share a Redis, each holding a counter component that adds 1 to
// a key per request (components-src/wat/kv/counter_wat.wat); 2,000 requests
// go through the gateway while one node is SIGKILLed mid-run, and the
// gateway resends what it held. Steps that ran on the dead node and again
// elsewhere, and steps that ran twice after an unclear migration, must
// have counted once: the counter equals the number of 200 answers exactly.
func TestEffectsOnceUnderFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four processes and a redis-server")
	}
	const requests = 2000
	const killAfter = 600 // answered requests before node-2 dies
	redis := testutil.StartRedis(t)
	bin := binary(t)
	dir := t.TempDir()
	certs := filepath.Join(dir, "certs")
	tsubame(t, bin, "ca", "init", "--dir", certs)
	for _, name := range []string{"node-1", "node-2", "node-3", "gateway"} {
		tsubame(t, bin, "ca", "issue", "--dir", certs, name)
	}
	counter, _ := filepath.Abs("../testdata/counter_wat.wasm")
	kvSection := fmt.Sprintf(`
[kv]
default_backend = "shared"
[kv.backends.shared]
type = "redis"
url = %q
timeout = "2s"
`, redis.URL())
	comps := map[string]string{"counter": counter}
	n1 := start(t, bin, dir, "node-1", "node", nodeConfig("node-1", certs, "", comps)+kvSection)
	seed := n1.field(t, "gossip")
	var n2, n3 *proc
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		n2 = start(t, bin, dir, "node-2", "node", nodeConfig("node-2", certs, seed, comps)+kvSection)
	}()
	go func() {
		defer wg.Done()
		n3 = start(t, bin, dir, "node-3", "node", nodeConfig("node-3", certs, seed, comps)+kvSection)
	}()
	wg.Wait()
	if n2 == nil || n3 == nil {
		t.FailNow()
	}
	gw := start(t, bin, dir, "gateway", "gateway", gatewayConfig(certs, seed)+`[dispatch]
attempts = 6
attempt_timeout = "1s"

[[route]]
method = "GET"
path = "/count"
component = "counter"
kind = "incr"
`)
	base := regexp.MustCompile(`https?://\S+`).FindString(gw.line)
	client := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 32}}
	poll(t, 30*time.Second, func() string {
		code, body, err := get(client, base+"/healthz")
		if err != nil || code != 200 || !regexp.MustCompile(`\nnodes 3\n`).MatchString(body) {
			return fmt.Sprintf("healthz: %d %q %v", code, body, err)
		}
		for _, n := range []*proc{n1, n2, n3} {
			if seen := freshPeers(client, n.field(t, "admin")); seen != 2 {
				return fmt.Sprintf("%s sees %d fresh nodes", n.name, seen)
			}
		}
		return ""
	})

	var next, ok200 atomic.Int64
	var answered atomic.Int64
	statuses := make(chan string, requests)
	killed := make(chan struct{})
	var workers sync.WaitGroup
	for range 16 {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for next.Add(1) <= requests {
				code, body, err := get(client, base+"/count")
				switch {
				case err != nil:
					statuses <- "error: " + err.Error()
				case code == 200:
					if _, perr := strconv.Atoi(body); perr != nil {
						statuses <- "200 with body " + strconv.Quote(body)
					}
					ok200.Add(1)
				default:
					statuses <- fmt.Sprintf("%d %q", code, body)
				}
				if answered.Add(1) == killAfter {
					close(killed)
				}
			}
		}()
	}
	select {
	case <-killed:
		_ = syscall.Kill(-n2.cmd.Process.Pid, syscall.SIGKILL)
	case <-time.After(5 * time.Minute):
		t.Fatal("the first requests were not answered within 5 minutes")
	}
	workers.Wait()
	close(statuses)
	others := map[string]int{}
	for s := range statuses {
		others[s]++
	}
	got, found, err := redis.Get("tsubame:kv:{counter}:count")
	if err != nil || !found {
		t.Fatalf("the counter is not in Redis: %v %v", found, err)
	}
	count, _ := strconv.ParseInt(got, 10, 64)
	t.Logf("%d requests, %d answered 200, counter %d; other answers: %v", requests, ok200.Load(), count, others)
	if count != ok200.Load() {
		t.Errorf("counter = %d, but %d requests were answered 200: an effect was applied twice or without an answer", count, ok200.Load())
	}
	if ok200.Load() < requests*9/10 {
		t.Errorf("only %d of %d requests answered 200", ok200.Load(), requests)
	}
}
