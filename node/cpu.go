package node

import (
	"runtime"
	"sync"
	"time"

	"github.com/tsubame-rt/tsubame/internal/cputime"
)

// cpuSampler measures this process's CPU use as a fraction of the CPUs it may
// use (GOMAXPROCS), between consecutive samples at least minCPUSample apart.
// Several nodes in one process (tests, the demo) all see the process figure;
// where CPU time cannot be read, load is the run queue alone.
type cpuSampler struct {
	mu    sync.Mutex
	at    time.Time
	used  time.Duration
	value float64
}

const minCPUSample = 50 * time.Millisecond

func (s *cpuSampler) get() float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	if !s.at.IsZero() && now.Sub(s.at) < minCPUSample {
		return s.value
	}
	used, ok := cputime.Self()
	if !ok {
		return 0
	}
	if !s.at.IsZero() {
		wall := now.Sub(s.at) * time.Duration(runtime.GOMAXPROCS(0))
		s.value = min(max(float64(used-s.used)/float64(wall), 0), 1)
	}
	s.at, s.used = now, used
	return s.value
}
