package cputime

import (
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/tsubame-rt/tsubame/internal/testutil"
)

func TestParseStat(t *testing.T) {
	line := []byte("4242 (a (b) c) S 1 4242 4242 0 -1 4194560 500 0 0 0 250 75 0 0 20 0 8 0 100 0 0\n")
	d, ok := parseStat(line)
	if !ok || d != 3250*time.Millisecond {
		t.Fatalf("parseStat = %v, %v; want 3.25s (325 ticks)", d, ok)
	}
	for _, bad := range []string{"", "1 (x) S 1 2", "1 (x) S 1 2 3 4 5 6 7 8 9 10 x 8"} {
		if _, ok := parseStat([]byte(bad)); ok {
			t.Errorf("parseStat(%q) ok", bad)
		}
	}
}

// Spinning shows up in this process's CPU time, read both ways (/proc
// counts in 10 ms ticks, so spin until both have moved, within Patience).
func TestSelfAndProcessAdvance(t *testing.T) {
	if _, ok := Self(); !ok {
		t.Skip("no CPU time on", runtime.GOOS)
	}
	m := Start()
	before, pok := Process(os.Getpid())
	if runtime.GOOS == "linux" && !pok {
		t.Fatal("cannot read /proc/self's CPU time")
	}
	x := 0
	testutil.WaitFor(t, "CPU time to advance", func() bool {
		for i := 0; i < 1e6; i++ {
			x += i
		}
		used, _ := m.Used()
		after, _ := Process(os.Getpid())
		return used > 0 && (runtime.GOOS != "linux" || after > before)
	})
	_ = x
}
