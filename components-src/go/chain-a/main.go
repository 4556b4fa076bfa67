//go:build wasip1

// Command chain-a is the head of the chain chain-a -> chain-b -> chain-c:
// kind "run" asks chain-b to "run" on its input and replies "a(" + that +
// ")". Explicit style; its continuation carries the input's length to show
// state surviving the call (and, in a cluster, a migration).
//
// Build (scripts/components/go.sh does this for every Go component):
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -buildvcs=false -o testdata/chain-a.wasm ./components-src/go/chain-a
package main

import (
	"strconv"

	tsubame "github.com/tsubame-rt/tsubame/abi/go"
)

func init() { tsubame.Handle("run", run) }

func run(c *tsubame.Ctx) tsubame.Outcome {
	if c.Calls() == 0 {
		return c.Call("chain-b", "run", c.Input(), strconv.AppendInt(nil, int64(len(c.Input())), 10))
	}
	out, err := c.Child(0)
	if err != nil {
		return c.FailErr(err)
	}
	reply := append([]byte("a("), out...)
	reply = append(reply, ")/"...)
	return c.Reply(append(reply, c.Cont()...)) // the input length saved before the call
}

func main() {} // a reactor: the host calls the SDK's exports, never main
