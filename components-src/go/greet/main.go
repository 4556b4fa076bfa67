//go:build wasip1

// Command greet is a component: kind "greet" replies "Hello, " followed by
// its input, and fails with 400 when the input is empty (the gateway
// answers that as HTTP 400).
//
// Build (scripts/components/go.sh does this for every Go component):
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -buildvcs=false -o testdata/greet.wasm ./components-src/go/greet
package main

import tsubame "github.com/tsubame-rt/tsubame/abi/go"

func init() { tsubame.Handle("greet", greet) }

func greet(c *tsubame.Ctx) tsubame.Outcome {
	if len(c.Input()) == 0 {
		return c.Fail(400, "greet: empty name")
	}
	return c.Reply(append([]byte("Hello, "), c.Input()...))
}

func main() {} // a reactor: the host calls the SDK's exports, never main
