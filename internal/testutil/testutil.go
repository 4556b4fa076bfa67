// Package testutil holds what the tests of several packages share. Only
// _test.go files import it; it never sleeps for a fixed time in place of
// waiting for a condition.
package testutil

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// Patience is how long WaitFor polls before it fails the test: far longer
// than any awaited condition takes on a loaded two-core CI machine, so a
// failure means the condition did not come, not that it came late.
const Patience = 10 * time.Second

// WaitFor polls cond every few milliseconds until it holds, and fails t,
// naming what it waited for, if it still does not after Patience.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	waitFor(t, what, cond, Patience)
}

func waitFor(t testing.TB, what string, cond func() bool, patience time.Duration) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Binary returns the tsubame binary: $TSUBAME_BIN (make test builds it),
// or a fresh `go build` into the test's temp dir.
func Binary(t testing.TB) string {
	t.Helper()
	if bin := os.Getenv("TSUBAME_BIN"); bin != "" {
		return bin
	}
	bin := filepath.Join(t.TempDir(), "tsubame")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/tsubame-rt/tsubame/cmd/tsubame").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}
