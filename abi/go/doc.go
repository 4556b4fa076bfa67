// Package tsubame is the Go guest SDK for Tsubame components: it implements
// the component side of the ABI (../ABI.md) so a component is a few
// handlers registered in init. Import it as
//
//	import tsubame "github.com/tsubame-rt/tsubame/abi/go"
//
// and build the component as a WASI reactor:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -buildvcs=false -o x.wasm .
//
// The SDK provides the module's exports (tsubame_abi_version, tsubame_step);
// each step it reads the request kind and runs the handler registered for
// it. Handlers come in two styles (ABI.md §6).
//
// Explicit continuations: a Handler runs once per step and returns the
// step's Outcome. Everything it needs after a call goes into the
// continuation it passes to Call.
//
//	func init() { tsubame.Handle("say", say) }
//
//	func say(c *tsubame.Ctx) tsubame.Outcome {
//		if c.Calls() == 0 {
//			return c.Call("greet", "greet", c.Input(), nil)
//		}
//		out, err := c.Child(0)
//		if err != nil {
//			return c.FailErr(err) // forwards the child's code
//		}
//		return c.Reply(append(out, '!'))
//	}
//
// Sequential: a SeqHandler reads like ordinary code and is replayed from
// the top on each step; it must be deterministic (see Seq).
//
//	func init() { tsubame.HandleSeq("twice", twice) }
//
//	func twice(s *tsubame.Seq) ([]byte, error) {
//		a, err := s.Call("c", "upper", s.Input())
//		if err != nil {
//			return nil, err
//		}
//		b, err := s.Call("c", "reverse", a)
//		if err != nil {
//			return nil, err
//		}
//		return append(append(a, '+'), b...), nil
//	}
//
// A reactor module never runs main, so register handlers in init; main may
// stay empty. A kind without a handler fails with CodeNotFound.
//
// The Go runtime cannot finish a garbage collection between the host's
// calls into the module (Go issue 65199), so the SDK runs runtime.GC at the
// end of a step once the component has allocated DefaultGCBudget bytes
// since the last one, or when the step grew linear memory (SetGCBudget
// changes the budget). The SDK reuses its buffers: slices it hands out are
// valid until the step ends.
//
// Outside GOOS=wasip1 the package builds, so tools and tests that import it
// work, but its host functions panic: it never runs a component by itself.
package tsubame
