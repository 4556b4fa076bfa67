//go:build wasip1

// Command conformance_go is the conformance kinds (conformance/kinds.md) in
// Go, with both continuation styles: conformance/ runs one table of
// behaviours against this module and its twins in C, Rust, AssemblyScript
// and WAT.
//
// Build (scripts/components/go.sh does this for every Go component):
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -buildvcs=false -o testdata/conformance_go.wasm ./components-src/go/conformance_go
package main

import (
	"bytes"
	"errors"
	"strconv"
	"time"

	tsubame "github.com/tsubame-rt/tsubame/abi/go"
)

func init() {
	tsubame.Handle("echo", func(c *tsubame.Ctx) tsubame.Outcome { return c.Reply(c.Input()) })
	tsubame.Handle("greet", func(c *tsubame.Ctx) tsubame.Outcome {
		return c.Reply(append([]byte("Hello, "), c.Input()...))
	})
	tsubame.Handle("fail", func(c *tsubame.Ctx) tsubame.Outcome {
		code, msg := field(c.Input())
		return c.Fail(num(code), string(msg))
	})
	tsubame.Handle("call", call)
	tsubame.Handle("catch", catch)
	tsubame.Handle("cont", cont)
	tsubame.HandleSeq("seq", seq)
	tsubame.HandleSeq("loop", loop)
	tsubame.HandleSeq("nondet", nondet)
	tsubame.Handle("log", func(c *tsubame.Ctx) tsubame.Outcome {
		level, msg := field(c.Input())
		tsubame.Log(int(num(level)), string(msg))
		return c.Reply([]byte("logged"))
	})
	tsubame.Handle("big", func(c *tsubame.Ctx) tsubame.Outcome {
		out := make([]byte, num(c.Input()))
		for i := range out {
			out[i] = byte('a' + i%26)
		}
		return c.Reply(out)
	})
	tsubame.Handle("size", func(c *tsubame.Ctx) tsubame.Outcome {
		var sum uint32
		for _, b := range c.Input() {
			sum += uint32(b)
		}
		return c.Reply([]byte(strconv.Itoa(len(c.Input())) + " " + strconv.FormatUint(uint64(sum), 10)))
	})
	tsubame.Handle("trap", func(c *tsubame.Ctx) tsubame.Outcome { panic("conformance: trap requested") })
}

// field splits b at its first space.
func field(b []byte) (head, rest []byte) {
	head, rest, _ = bytes.Cut(b, []byte{' '})
	return head, rest
}

func num(b []byte) uint32 {
	var v uint32
	for _, c := range b {
		if c < '0' || c > '9' {
			break
		}
		v = v*10 + uint32(c-'0')
	}
	return v
}

func pattern(i int) byte { return byte(i*7 + 3) }

// callArgs splits a "TARGET KIND REST" input.
func callArgs(b []byte) (target, kind string, rest []byte) {
	t, rest := field(b)
	k, rest := field(rest)
	return string(t), string(k), rest
}

func call(c *tsubame.Ctx) tsubame.Outcome {
	if c.Calls() == 0 {
		t, k, rest := callArgs(c.Input())
		return c.Call(t, k, rest, []byte("call:1"))
	}
	if string(c.Cont()) != "call:1" {
		return c.Fail(100, "conformance: lost continuation")
	}
	out, err := c.Child(c.Calls() - 1)
	if err != nil {
		return c.FailErr(err)
	}
	return c.Reply(out)
}

func catch(c *tsubame.Ctx) tsubame.Outcome {
	if c.Calls() == 0 {
		t, k, rest := callArgs(c.Input())
		return c.Call(t, k, rest, nil)
	}
	out, err := c.Child(0)
	var e *tsubame.Error
	switch {
	case err == nil:
		return c.Reply(append([]byte("ok: "), out...))
	case errors.As(err, &e):
		return c.Reply([]byte("failed " + strconv.FormatUint(uint64(e.Code), 10) + ": " + e.Msg))
	}
	return c.FailErr(err)
}

func cont(c *tsubame.Ctx) tsubame.Outcome {
	t, n := field(c.Input())
	size := int(num(n))
	if c.Calls() == 0 {
		saved := make([]byte, size)
		for i := range saved {
			saved[i] = pattern(i)
		}
		return c.Call(string(t), "echo", []byte("x"), saved)
	}
	saved := c.Cont()
	ok := len(saved) == size
	for i := 0; ok && i < size; i++ {
		ok = saved[i] == pattern(i)
	}
	if !ok {
		return c.Fail(100, "conformance: continuation changed")
	}
	return c.Reply([]byte("cont ok " + strconv.Itoa(size)))
}

func seq(s *tsubame.Seq) ([]byte, error) {
	t, k, rest := callArgs(s.Input())
	a, err := s.Call(t, k, rest)
	if err != nil {
		return nil, err
	}
	b, err := s.Call(t, k, a)
	if err != nil {
		return nil, err
	}
	return append(append(append([]byte{}, a...), '|'), b...), nil
}

func loop(s *tsubame.Seq) ([]byte, error) {
	t, k, rest := callArgs(s.Input())
	var out []byte
	for i := 0; i < int(num(rest)); i++ {
		r, err := s.Call(t, k, []byte(strconv.Itoa(i)))
		if err != nil {
			return nil, err
		}
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, r...)
	}
	return out, nil
}

// nondet breaks the replay rule on purpose: the call's input is the clock,
// which differs on the replay.
func nondet(s *tsubame.Seq) ([]byte, error) {
	t, k, _ := callArgs(s.Input())
	return s.Call(t, k, []byte(strconv.FormatInt(time.Now().UnixNano(), 10)))
}

func main() {} // a reactor: the host calls the SDK's exports, never main
