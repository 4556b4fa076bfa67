//go:build !wasip1

package tsubame_test

import (
	"strings"
	"testing"

	"github.com/tsubame-rt/tsubame/lp"
)

// The committed Go components, run end to end through the SDK.
func TestComponents(t *testing.T) {
	h := newHarness(t, 1024, testdata("greet", "hello", "chain-a", "chain-b", "chain-c", "memgrow")...)
	for _, tc := range []struct {
		target, kind, input string
		code                uint32
		want                string // the reply, or a substring of the failure message
	}{
		{"greet", "greet", "world", 0, "Hello, world"},
		{"greet", "greet", "", 400, "greet: empty name"},
		{"hello", "say", "world", 0, "Hello, world!"},
		{"hello", "say-seq", "world", 0, "Hello, world!"},
		{"hello", "say", "", 400, "greet: empty name"},
		{"hello", "say-seq", "", 400, "greet: empty name"},
		{"hello", "nope", "", 404, `no handler for kind "nope"`},
		{"chain-a", "run", "Tsubame", 0, "a(b(TSUBAME,emabusT))/7"},
		{"chain-c", "reverse", strings.Repeat("ab", 10000), 0, strings.Repeat("ba", 10000)},
		{"memgrow", "alloc", "100000", 0, "100000"},
		{"memgrow", "alloc", "x", 400, "byte count"},
		{"memgrow", "panic", "", 1, "unreachable"}, // the Go runtime aborts
		{"memgrow", "alloc", "", 0, "4096"},        // a fresh instance after the trap
	} {
		root := h.run(tc.target, tc.kind, []byte(tc.input))
		got := string(root.Output)
		if root.State == lp.StateFailed {
			got = root.ErrMsg
		}
		if root.ErrCode != tc.code || (tc.code == 0 && got != tc.want) || !strings.Contains(got, tc.want) {
			t.Errorf("%s/%s(%.20q): got code %d %.60q, want code %d %.60q", tc.target, tc.kind, tc.input, root.ErrCode, got, tc.code, tc.want)
		}
	}
	if !strings.Contains(h.stderr.String(), "memgrow: asked to panic") {
		t.Errorf("the guest's panic message did not reach stderr: %q", h.stderr.String())
	}
}

// The SDK's collections keep an allocating Go instance inside the default
// 64 MiB limit; with them off (see BenchmarkMemgrow) both loads below run
// out of memory.
func TestMemoryBounded(t *testing.T) {
	h := newHarness(t, 1024, testdata("memgrow")...)
	for _, load := range []struct{ steps, size int }{{3000, 64 << 10}, {300, 1 << 20}} {
		if _, err := h.allocSteps(load.steps, load.size); err != nil {
			t.Fatal(err)
		}
	}
	if mib := h.memMiB("memgrow"); mib > 32 {
		t.Errorf("memgrow grew to %.1f MiB after 3000 steps of 64 KiB and 300 of 1 MiB", mib)
	}
}
