//go:build !wasip1

package tsubame_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"

	"github.com/tsubame-rt/tsubame/abi/go"
	"github.com/tsubame-rt/tsubame/lp"
)

// buildMemgrow builds components-src/go/memgrow with the SDK's GC budget
// set to budget (0: off), with the flags of scripts/components/go.sh.
func buildMemgrow(tb testing.TB, budget int) string {
	tb.Helper()
	out := filepath.Join(tb.TempDir(), "memgrow.wasm")
	cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-buildmode=c-shared", "-trimpath",
		"-buildvcs=false", "-ldflags=-X main.gcBudget="+strconv.Itoa(budget), "-o", out, "./components-src/go/memgrow")
	cmd.Dir = filepath.Join("..", "..")
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0", "GOFLAGS=")
	if log, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("build memgrow: %v\n%s", err, log)
	}
	return out
}

// memMiB returns the size of the named instance's linear memory.
func (h *harness) memMiB(name string) float64 {
	in, err := h.instance(name)
	if err != nil {
		h.tb.Fatal(err)
	}
	return float64(in.mod.Memory().Size()) / (1 << 20)
}

// allocSteps runs n LPs of one memgrow step each, allocating size bytes,
// and returns how many succeeded before the first failure.
func (h *harness) allocSteps(n, size int) (int, error) {
	in := []byte(strconv.Itoa(size))
	for i := 0; i < n; i++ {
		if root := h.run("memgrow", "alloc", in); root.State != lp.StateDone {
			return i, fmt.Errorf("step %d of %d allocating %d bytes: code %d %.80s",
				i, n, size, root.ErrCode, root.ErrMsg)
		}
	}
	return n, nil
}

// BenchmarkMemgrow runs memgrow's allocation b.N times in one instance
// (memory limit 1 GiB) and reports the instance's memory at the end (and,
// if it ran out of memory, after how many steps), with the SDK's collections
// off and at the default budget. For the figure in the
// SDK's docs: -bench Memgrow -benchtime 100000x.
func BenchmarkMemgrow(b *testing.B) {
	for _, budget := range []int{0, tsubame.DefaultGCBudget} {
		mod := buildMemgrow(b, budget)
		for _, size := range []int{4 << 10, 64 << 10} {
			b.Run("budget="+strconv.Itoa(budget>>20)+"MiB/size="+strconv.Itoa(size>>10)+"KiB", func(b *testing.B) {
				h := newHarness(b, 1<<14, mod)
				if _, err := h.allocSteps(10, size); err != nil { // instantiate and warm up
					b.Fatal(err)
				}
				b.ResetTimer()
				done, err := h.allocSteps(b.N, size)
				b.StopTimer()
				if err != nil {
					// Without the SDK's collections this is the expected end:
					// report how far it got.
					b.Log(err)
					b.ReportMetric(float64(done), "steps-before-oom")
					return // the trapped instance is gone
				}
				b.ReportMetric(h.memMiB("memgrow"), "MiB")
			})
		}
	}
}

// BenchmarkStep measures one LP of one step (greet) and of three steps with
// a call (hello, both styles) through the test harness, against the
// smallest possible component (the WAT echo) as the baseline.
func BenchmarkStep(b *testing.B) {
	h := newHarness(b, 1024, testdata("echo", "greet", "hello")...)
	for _, c := range []struct{ name, target, kind string }{
		{"echo-wat", "echo", "echo"},
		{"greet", "greet", "greet"},
		{"hello-say", "hello", "say"},
		{"hello-say-seq", "hello", "say-seq"},
	} {
		b.Run(c.name, func(b *testing.B) {
			in := []byte("world")
			for b.Loop() {
				if root := h.run(c.target, c.kind, in); root.State != lp.StateDone {
					b.Fatalf("%d %s", root.ErrCode, root.ErrMsg)
				}
			}
		})
	}
}
