package tsubame

// The Go runtime cannot finish a garbage collection between the host's
// calls into a module (Go issue 65199): its background workers only run
// while Go code runs, and a reactor's Go code runs only inside a step. So
// the SDK collects itself, at the end of a step, when the bytes allocated
// since its last collection reach a budget. Reading the allocation counter
// costs several small steps (runtime.ReadMemStats, ~25 µs), so it is
// read only every few steps: rarely while a component allocates little,
// often enough not to overshoot the budget when it allocates fast. A step
// during which linear memory grew is always followed by a collection: the
// heap has just outgrown what earlier collections left free.

// DefaultGCBudget is how many bytes a component may allocate between two
// of the SDK's collections (see SetGCBudget).
const DefaultGCBudget = 16 << 20

// maxCheckEvery bounds the steps between two reads of the allocation
// counter; with no allocation its cost is then about 0.1 µs a step.
const maxCheckEvery = 256

// gcPolicy decides when the SDK collects. Pure bookkeeping, tested on the
// host.
type gcPolicy struct {
	budget  uint64 // 0: the SDK never collects
	since   int    // steps since the counter was last read
	every   int    // steps between reads, adapted to the allocation rate
	atGC    uint64 // counter at the last collection
	atCheck uint64 // counter at the last read
}

// tick counts a step and reports whether afterStep must run: small enough
// to inline, so most steps cost no call.
func (g *gcPolicy) tick(grew bool) bool {
	g.since++
	return grew || g.since >= g.every
}

// afterStep runs after a step for which tick said so; grew says linear
// memory grew during it and allocs reads the runtime's cumulative count of
// allocated bytes. It reports whether to collect now.
func (g *gcPolicy) afterStep(grew bool, allocs func() uint64) bool {
	if g.budget == 0 {
		g.since, g.every = 0, maxCheckEvery
		return false
	}
	a := allocs()
	rate := (a - g.atCheck) / uint64(g.since) // bytes a step
	g.since, g.atCheck = 0, a
	left := int64(g.budget) - int64(a-g.atGC)
	collect := grew || left <= 0
	if collect {
		g.atGC, left = a, int64(g.budget)
	}
	// Read again when about half of what is left is used up.
	g.every = maxCheckEvery
	if rate > 0 && uint64(left)/rate/2 < maxCheckEvery {
		g.every = max(1, int(uint64(left)/rate/2))
	}
	return collect
}
