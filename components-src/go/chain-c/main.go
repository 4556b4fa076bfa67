//go:build wasip1

// Command chain-c is the tail of the chain chain-a -> chain-b -> chain-c:
// kind "upper" replies its input in upper case, kind "reverse" replies it
// reversed byte by byte.
//
// Build (scripts/components/go.sh does this for every Go component):
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -buildvcs=false -o testdata/chain-c.wasm ./components-src/go/chain-c
package main

import (
	"bytes"

	tsubame "github.com/tsubame-rt/tsubame/abi/go"
)

func init() {
	tsubame.Handle("upper", func(c *tsubame.Ctx) tsubame.Outcome { return c.Reply(bytes.ToUpper(c.Input())) })
	tsubame.Handle("reverse", reverse)
}

func reverse(c *tsubame.Ctx) tsubame.Outcome {
	in := c.Input()
	out := make([]byte, len(in))
	for i, b := range in {
		out[len(in)-1-i] = b
	}
	return c.Reply(out)
}

func main() {} // a reactor: the host calls the SDK's exports, never main
