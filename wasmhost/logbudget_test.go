package wasmhost

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tsubame-rt/tsubame/abi"
)

// A guest that writes log records and stdout in a loop until its deadline
// reaches the log only up to its step's budget and its component's
// per-second bucket; the rest is counted, the first drop said once, and
// another component's output still gets through.
func TestLogFloodBounded(t *testing.T) {
	for _, tc := range []struct {
		name   string
		limits LogLimits
		// bound returns the most bytes of guest text allowed over steps
		// taking elapsed in all.
		bound func(steps int, elapsed time.Duration) int
	}{
		{"per step", LogLimits{PerStep: 32 << 10, PerSecond: 64 << 20, Burst: 64 << 20},
			func(steps int, _ time.Duration) int { return steps * (32 << 10) }},
		{"per second", LogLimits{PerStep: 64 << 20, PerSecond: 16 << 10, Burst: 32 << 10},
			func(_ int, d time.Duration) int { return 32<<10 + int(d.Seconds()*(16<<10)) + 1 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logs := &logBuf{}
			rt := newRuntime(t, testConfig(logs).WithStepTimeout(200*time.Millisecond).WithLogLimits(tc.limits))
			flood, quiet := load(t, rt, "logflood"), load(t, rt, "stdout")
			const steps = 3
			start := time.Now()
			for i := range steps {
				_, err := flood.Step(context.Background(), "flood", newLP("flood", "k", ""))
				var se *StepError
				if !errors.As(err, &se) || se.Code != abi.CodeTimeout {
					t.Fatalf("flood step %d: %v, want a timeout", i, err)
				}
			}
			elapsed := time.Since(start)
			res, err := quiet.Step(context.Background(), "quiet", newLP("quiet", "k", ""))
			if err != nil || string(res.Output) != "ok" {
				t.Fatalf("quiet step: %+v %v", res, err)
			}
			out := logs.String()
			var text int
			for line := range strings.Lines(out) {
				if strings.Contains(line, "component=flood") && strings.Contains(line, `msg="flood`) {
					text += 4095
				}
			}
			if max := tc.bound(steps, elapsed); text == 0 || text > max {
				t.Errorf("flood wrote %d bytes of text to the log, want 1 to %d", text, max)
			}
			if n := strings.Count(out, "is dropped and counted"); n != 1 {
				t.Errorf("the drop was said %d times, want once:\n%.2000s", n, out)
			}
			if !strings.Contains(out, "component=quiet") || !strings.Contains(out, "hello from wasi") {
				t.Errorf("another component's output was dropped too")
			}
			if recs, bytes := rt.LogDropped(); recs == 0 || bytes < recs*32 {
				t.Errorf("LogDropped = %d records, %d bytes; want some", recs, bytes)
			}
		})
	}
}
