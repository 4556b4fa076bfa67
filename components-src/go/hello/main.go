//go:build wasip1

// Command hello is the paper's first example, in both styles: kind "say"
// (explicit continuation) and kind "say-seq" (sequential) each ask
// component greet to greet their input and reply with its answer and "!".
// A failure of greet is forwarded with its code.
//
// Build (scripts/components/go.sh does this for every Go component):
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -buildvcs=false -o testdata/hello.wasm ./components-src/go/hello
package main

import tsubame "github.com/tsubame-rt/tsubame/abi/go"

func init() {
	tsubame.Handle("say", say)
	tsubame.HandleSeq("say-seq", saySeq)
}

// say runs twice per request: first it calls greet (there is nothing to
// remember, so the continuation is empty), then it finishes with greet's
// result.
func say(c *tsubame.Ctx) tsubame.Outcome {
	if c.Calls() == 0 {
		return c.Call("greet", "greet", c.Input(), nil)
	}
	out, err := c.Child(c.Calls() - 1)
	if err != nil {
		return c.FailErr(err)
	}
	return c.Reply(append(out, '!'))
}

func saySeq(s *tsubame.Seq) ([]byte, error) {
	out, err := s.Call("greet", "greet", s.Input())
	if err != nil {
		return nil, err
	}
	return append(out, '!'), nil
}

func main() {} // a reactor: the host calls the SDK's exports, never main
