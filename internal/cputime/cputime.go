// Package cputime reads how much CPU a process has used, so that
// benchmarks can report cost (CPU µs per request, all processes involved)
// next to speed. It never samples or estimates: on a system where a figure
// cannot be read it says so (ok false) rather than returning zero.
package cputime

import (
	"testing"
	"time"
)

// Self returns the user plus system CPU time this process has used.
func Self() (time.Duration, bool) { return self() }

// Process returns the user plus system CPU time process pid has used (its
// threads included, its children not).
func Process(pid int) (time.Duration, bool) { return process(pid) }

// Meter measures this process's CPU over a stretch of work.
type Meter struct {
	start time.Duration
	ok    bool
}

// Start begins a measurement.
func Start() Meter {
	d, ok := Self()
	return Meter{start: d, ok: ok}
}

// Used returns the CPU used since Start.
func (m Meter) Used() (time.Duration, bool) {
	d, ok := Self()
	return d - m.start, ok && m.ok
}

// Report adds this process's CPU µs per operation since Start to b's
// results as "cpu-µs/op" (nothing where CPU time cannot be read). Call it
// after b.StopTimer, with the number of operations done.
func (m Meter) Report(b *testing.B, ops int) {
	if d, ok := m.Used(); ok && ops > 0 {
		b.ReportMetric(float64(d.Microseconds())/float64(ops), "cpu-µs/op")
	}
}

// Children returns the user plus system CPU time of this process's children
// that have ended and been waited for (a load generator run as a child, read
// before and after).
func Children() (time.Duration, bool) { return children() }
