package wasmhost

import (
	"context"
	"encoding/binary"
	"errors"
	"testing"
	"time"
)

// argRecord is one record of hostargs.wasm's input: a host function number
// and three i32 arguments.
func argRecord(fn uint32, a, b, c int32) []byte {
	r := binary.LittleEndian.AppendUint32(nil, fn)
	r = binary.LittleEndian.AppendUint32(r, uint32(a))
	r = binary.LittleEndian.AppendUint32(r, uint32(b))
	return binary.LittleEndian.AppendUint32(r, uint32(c))
}

// FuzzHostArgs runs hostargs.wasm, which calls the version-1 host functions
// with the arguments in its input (pointers and lengths anywhere, negative,
// past memory, outcomes twice). Every step ends with an outcome or a
// StepError carrying a code, never a panic, and the runtime keeps serving.
func FuzzHostArgs(f *testing.F) {
	f.Add(argRecord(0, 0, 16, 0))                                             // kind into memory
	f.Add(argRecord(1, 65530, 100, 0))                                        // input past the end of memory
	f.Add(argRecord(6, 0, 4, 0))                                              // reply
	f.Add(append(argRecord(6, 0, 4, 0), argRecord(6, 0, 4, 0)...))            // two outcomes
	f.Add(argRecord(7, 0, 5, 0))                                              // call with names from memory
	f.Add(argRecord(8, 0, 0, 0))                                              // fail with code 0
	f.Add(argRecord(9, 99, -1, 1<<30))                                        // log, bad level and length
	f.Add(argRecord(5, -1, 0, 0))                                             // child of no call
	f.Add(append(argRecord(4, 1<<31-1, 0, 0), argRecord(2, 131072, 1, 0)...)) // child_code, cont out of memory
	rt := newRuntime(f, testConfig(nil).WithStepTimeout(2*time.Second).WithMaxInstances(1))
	m := load(f, rt, "hostargs")
	echo := load(f, rt, "echo")
	f.Fuzz(func(t *testing.T, in []byte) {
		res, err := m.Step(context.Background(), "hostargs", newLP("hostargs", "fuzz", string(in)))
		var se *StepError
		switch {
		case err == nil:
			if res.Outcome == 0 {
				t.Fatalf("no outcome and no error: %+v", res)
			}
		case errors.As(err, &se):
			if se.Code == 0 {
				t.Fatalf("step error without a code: %v", err)
			}
		default:
			t.Fatalf("step failed outside the guest: %v", err)
		}
		if res, err := echo.Step(context.Background(), "echo", newLP("echo", "k", "still")); err != nil || string(res.Output) != "still" {
			t.Fatalf("the runtime stopped serving: %+v %v", res, err)
		}
	})
}
