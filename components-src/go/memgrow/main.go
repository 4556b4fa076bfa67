//go:build wasip1

// Command memgrow allocates on purpose, to test how hosts and the SDK
// bound a Go guest's memory:
//
//   - kind "alloc" allocates as many bytes as its input says (decimal,
//     4096 if empty), writes to each page, keeps nothing and replies the
//     count. Without the SDK's periodic GC an instance doing this grows
//     without bound (Go issue 65199);
//   - kind "leak" does the same but keeps every allocation, so the instance
//     ends at its memory limit (code 5);
//   - kind "panic" panics, which traps the step (code 1).
//
// Build (scripts/components/go.sh does this for every Go component):
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -buildvcs=false -o testdata/memgrow.wasm ./components-src/go/memgrow
//
// Measurements build variants with another GC budget (0 turns the SDK's
// collections off):
//
//	... -ldflags="-X main.gcBudget=0" ...
package main

import (
	"strconv"

	tsubame "github.com/tsubame-rt/tsubame/abi/go"
)

// gcBudget, when set at link time, replaces the SDK's GC budget.
var gcBudget string

func init() {
	if n, err := strconv.Atoi(gcBudget); err == nil {
		tsubame.SetGCBudget(n)
	}
	tsubame.Handle("alloc", func(c *tsubame.Ctx) tsubame.Outcome { return alloc(c, false) })
	tsubame.Handle("leak", func(c *tsubame.Ctx) tsubame.Outcome { return alloc(c, true) })
	tsubame.Handle("panic", func(c *tsubame.Ctx) tsubame.Outcome { panic("memgrow: asked to panic") })
}

var kept [][]byte

// sink keeps the compiler from proving the allocation dead.
var sink byte

func alloc(c *tsubame.Ctx, keep bool) tsubame.Outcome {
	n := 4096
	if len(c.Input()) > 0 {
		var err error
		if n, err = strconv.Atoi(string(c.Input())); err != nil || n < 0 || n > 64<<20 {
			return c.Fail(400, "memgrow: input must be a byte count up to 64 MiB")
		}
	}
	b := make([]byte, n)
	for i := 0; i < n; i += 4096 {
		b[i] = byte(i)
	}
	if n > 0 {
		sink ^= b[n-1]
	}
	if keep {
		kept = append(kept, b)
	}
	return c.Reply(strconv.AppendInt(nil, int64(n), 10))
}

func main() {} // a reactor: the host calls the SDK's exports, never main
