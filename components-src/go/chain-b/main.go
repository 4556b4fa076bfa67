//go:build wasip1

// Command chain-b is the middle of the chain chain-a -> chain-b -> chain-c:
// kind "run" calls chain-c twice, "upper" then "reverse" on its input, and
// replies "b(" + both results joined by "," + ")". Sequential style: the
// handler is replayed from the top on each of its three steps.
//
// Build (scripts/components/go.sh does this for every Go component):
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -buildvcs=false -o testdata/chain-b.wasm ./components-src/go/chain-b
package main

import tsubame "github.com/tsubame-rt/tsubame/abi/go"

func init() { tsubame.HandleSeq("run", run) }

func run(s *tsubame.Seq) ([]byte, error) {
	up, err := s.Call("chain-c", "upper", s.Input())
	if err != nil {
		return nil, err
	}
	rev, err := s.Call("chain-c", "reverse", s.Input())
	if err != nil {
		return nil, err
	}
	out := append([]byte("b("), up...)
	out = append(out, ',')
	out = append(out, rev...)
	return append(out, ')'), nil
}

func main() {} // a reactor: the host calls the SDK's exports, never main
