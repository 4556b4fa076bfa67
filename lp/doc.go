// Package lp is the lightweight process: the unit of work that Tsubame moves
// between nodes.
//
// A Process is a request. It is a list of entries, each an internal request to
// one component (target, kind, input), holding that component's saved
// continuation and, once finished, its reply or failure. Exactly one entry is
// active: the next thing to run. Entries form a call stack: a component that
// calls another suspends its entry (StateWaiting) and appends a child, which
// becomes active; when the child finishes, the parent becomes active again.
//
// The package holds the state transitions (Reply, Call, Fail) and the
// versioned binary wire codec. It never runs code, touches the network, or
// depends on anything but the standard library. Decoding untrusted bytes never
// panics and never allocates beyond the limits in Limits.
package lp
