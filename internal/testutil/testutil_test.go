package testutil

import (
	"fmt"
	"testing"
	"time"
)

func TestWaitForPolls(t *testing.T) {
	calls := 0
	WaitFor(t, "the third call", func() bool { calls++; return calls == 3 })
	if calls != 3 {
		t.Errorf("cond called %d times, want 3", calls)
	}
}

// fatalTB records a Fatalf instead of stopping the test.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper()                           {}
func (f *fatalTB) Fatalf(format string, args ...any) { f.msg = fmt.Sprintf(format, args...) }

func TestWaitForGivesUp(t *testing.T) {
	f := &fatalTB{TB: t}
	// Fatalf returns here, so the loop ends only through the deadline
	// check: cond turns true once Fatalf has been called.
	waitFor(f, "never", func() bool { return f.msg != "" }, 20*time.Millisecond)
	if want := "timed out waiting for never"; f.msg != want {
		t.Errorf("Fatalf said %q, want %q", f.msg, want)
	}
}
