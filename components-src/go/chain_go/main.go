//go:build wasip1

// Command chain_go is the head of the mixed-language chain
// chain_go -> chain_rust -> chain_c -> chain_as: kind "run" asks chain_rust to
// "run" on its input and replies "go(" + that + ")". A failure anywhere down
// the chain comes back with its code and message. Sequential style.
//
// Build (scripts/components/go.sh does this for every Go component):
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -buildvcs=false -o testdata/chain_go.wasm ./components-src/go/chain_go
package main

import tsubame "github.com/tsubame-rt/tsubame/abi/go"

func init() { tsubame.HandleSeq("run", run) }

func run(s *tsubame.Seq) ([]byte, error) {
	out, err := s.Call("chain_rust", "run", s.Input())
	if err != nil {
		return nil, err
	}
	return append(append([]byte("go("), out...), ')'), nil
}

func main() {} // a reactor: the host calls the SDK's exports, never main
