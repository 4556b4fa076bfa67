package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestKVCommand drives `tsubame kv` and `tsubame status` against a node's
// admin API: set, get, ls, del on a component's private bucket, the
// refusals, and the bucket in the status table.
func TestKVCommand(t *testing.T) {
	cc := startCLICluster(t)
	admin := []string{"--admin", cc.node.AdminAddr(), "--token-file", cc.token, "--ca", cc.ca}
	kv := func(args ...string) (int, string, string) {
		return cli(append(append([]string{"kv"}, admin...), args...)...)
	}
	if code, out, errs := kv("set", "--bucket", "counter", "count", "41"); code != 0 {
		t.Fatalf("set: exit %d %s%s", code, out, errs)
	}
	if code, out, errs := kv("set", "--bucket", "counter", "k\x01", "v", "--ttl", "1h"); code != 0 {
		t.Fatalf("set binary key: exit %d %s%s", code, out, errs)
	}
	if code, out, _ := kv("get", "--bucket", "counter", "count"); code != 0 || out != "41" {
		t.Errorf("get: exit %d %q", code, out)
	}
	if code, out, _ := kv("ls", "--bucket", "counter"); code != 0 || out != "count\n\"k\\x01\"\n" {
		t.Errorf("ls: exit %d %q", code, out)
	}
	if code, out, _ := kv("ls", "--bucket", "counter", "--after", "count"); code != 0 || out != "\"k\\x01\"\n" {
		t.Errorf("ls --after: exit %d %q", code, out)
	}
	if code, _, _ := kv("del", "--bucket", "counter", "count"); code != 0 {
		t.Errorf("del: exit %d", code)
	}
	if code, _, errs := kv("get", "--bucket", "counter", "count"); code != 1 || !strings.Contains(errs, "no key count") {
		t.Errorf("get after del: exit %d %q", code, errs)
	}
	if code, _, errs := kv("del", "--bucket", "counter", "count"); code != 1 || !strings.Contains(errs, "no key count") {
		t.Errorf("del twice: exit %d %q", code, errs)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"get", "--bucket", "9bad", "k"}, 2, "is not a name"},
		{[]string{"get", "k"}, 2, "usage"},
		{[]string{"frob", "--bucket", "b", "k"}, 2, "usage"},
		{[]string{"set", "--bucket", "b", strings.Repeat("k", 1025), "v"}, 1, "over the limit of 1024"},
	} {
		if code, _, errs := kv(tc.args...); code != tc.code || !strings.Contains(errs, tc.want) {
			t.Errorf("kv %q: exit %d %q, want %d and %q", tc.args, code, errs, tc.code, tc.want)
		}
	}
	wrong := filepath.Join(cc.dir, "wrong")
	if err := os.WriteFile(wrong, []byte("not-the-token-0123456789"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errs := cli("kv", "--admin", cc.node.AdminAddr(), "--token-file", wrong, "--ca", cc.ca, "get", "--bucket", "b", "k")
	if code != 1 || !strings.Contains(errs, "401") {
		t.Errorf("wrong token: exit %d %q", code, errs)
	}

	// The status table shows the buckets of the node's components.
	code, out, errs := cli(append(append([]string{"install"}, admin...), "counter", "../../testdata/counter_wat.wasm")...)
	if code != 0 {
		t.Fatalf("install: exit %d %s%s", code, out, errs)
	}
	code, out, errs = cli("status", "--admin", cc.node.AdminAddr(), "--ca", cc.ca)
	if code != 0 || !strings.Contains(out, "KV buckets of alpha") || !regexpLine(out, `counter\s+memory \(memory\)\s+on\s+counter \(private\)\s+ok`) {
		t.Errorf("status: exit %d\n%s%s", code, out, errs)
	}
}

// regexpLine reports whether some line of out matches pattern.
func regexpLine(out, pattern string) bool {
	re := regexp.MustCompile(pattern)
	for _, l := range strings.Split(out, "\n") {
		if re.MatchString(l) {
			return true
		}
	}
	return false
}
