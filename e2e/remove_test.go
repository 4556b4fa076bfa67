//go:build unix

package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestRemoveAllWhileSuspended runs `tsubame remove swap --all` while
// requests are suspended inside swap (its call to slow, a two-second step on
// another node, is under way): every request still succeeds, resumed in the
// version that saved it, because the node it returns to fetches that version
// from the node that keeps it (ABI.md §7). New requests then find no holder.
func TestRemoveAllWhileSuspended(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three processes")
	}
	bin := binary(t)
	dir := t.TempDir()
	certs := filepath.Join(dir, "certs")
	tsubame(t, bin, "ca", "init", "--dir", certs)
	for _, name := range []string{"node-1", "node-2", "gateway"} {
		tsubame(t, bin, "ca", "issue", "--dir", certs, name)
	}
	ca := filepath.Join(certs, "ca.pem")
	token := filepath.Join(dir, "token")
	if err := os.WriteFile(token, []byte("e2e-admin-token-0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	abs := func(p string) string { a, _ := filepath.Abs(p); return a }
	n1 := start(t, bin, dir, "node-1", "node", hotNodeConfig("node-1", certs, filepath.Join(dir, "d1"), token, "",
		map[string]string{"swap": abs("../testdata/swap_v1.wasm")}))
	seed := n1.field(t, "gossip")
	// slow spins for two seconds: node-2's step deadline leaves room.
	start(t, bin, dir, "node-2", "node", strings.Replace(hotNodeConfig("node-2", certs, filepath.Join(dir, "d2"), token, seed,
		map[string]string{"slow": abs("../testdata/spin.wasm")}), "workers = 2\n", "workers = 4\n", 1)+"[limits]\nstep_timeout = \"10s\"\n")
	gw := start(t, bin, dir, "gateway", "gateway", gatewayConfig(certs, seed)+`[dispatch]
attempt_timeout = "20s"
[[route]]
method = "GET"
path = "/swap"
component = "swap"
kind = "run"
input = "query:x"
`)
	base := regexp.MustCompile(`https?://\S+`).FindString(gw.line)
	admin1 := n1.field(t, "admin")
	auth := []string{"--token-file", token, "--ca", ca}
	client := &http.Client{Timeout: 60 * time.Second}
	poll(t, 30*time.Second, func() string {
		if code, body, err := get(client, base+"/healthz"); err != nil || code != 200 || !strings.Contains(body, "\nnodes 2\n") {
			return fmt.Sprintf("healthz: %d %q %v", code, body, err)
		}
		return ""
	})

	// swapSteps is how many steps of swap node-1 has run.
	swapSteps := func() uint64 {
		code, out := runBin(bin, append([]string{"components", "--admin", admin1, "--json"}, auth...)...)
		if code != 0 {
			return 0
		}
		var l struct {
			Nodes []struct {
				Components []struct {
					Name  string            `json:"name"`
					Kinds map[string]uint64 `json:"kinds"`
				} `json:"components"`
			} `json:"nodes"`
		}
		if json.Unmarshal([]byte(out), &l) != nil {
			return 0
		}
		for _, n := range l.Nodes {
			for _, c := range n.Components {
				if c.Name == "swap" {
					return c.Kinds["run"]
				}
			}
		}
		return 0
	}

	const k = 4
	type answer struct {
		code int
		body string
		err  error
		at   time.Time
	}
	answers := make([]answer, k)
	var wg sync.WaitGroup
	for i := range k {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, body, err := get(client, fmt.Sprintf("%s/swap?x=r%d", base, i))
			answers[i] = answer{code, body, err, time.Now()}
		}()
	}
	poll(t, 30*time.Second, func() string {
		if n := swapSteps(); n < k {
			return fmt.Sprintf("%d of %d requests have made their call", n, k)
		}
		return ""
	})
	code, out := runBin(bin, append([]string{"remove", "--admin", admin1, "swap", "--all"}, auth...)...)
	removed := time.Now()
	if code != 0 || !strings.Contains(out, "removed swap on 2 of 2 nodes") || !strings.Contains(out, "not held") {
		t.Fatalf("remove --all: exit %d\n%s", code, out)
	}
	wg.Wait()
	for i, a := range answers {
		if a.err != nil || a.code != 200 || a.body != fmt.Sprintf("v1->v1:r%d", i) {
			t.Errorf("request r%d: %d %q %v, want 200 \"v1->v1:r%d\"", i, a.code, a.body, a.err, i)
		}
		if a.at.Before(removed) {
			// Its call (two seconds of spinning) ended before the removal
			// did: the request proves nothing about resuming.
			t.Errorf("request r%d was answered before the removal finished: the machine is too slow for this test's two-second window", i)
		}
	}
	if code, body, _ := get(client, base+"/swap?x=late"); code != 503 && code != 502 {
		t.Errorf("a new request after the removal: %d %q, want no holder", code, body)
	}
}
