// Package node is the Tsubame server: it holds components, runs the steps of
// the LPs it owns on a bounded run queue and a pool of workers, and after
// every step decides where the LP goes next: here, another holder of the
// next component (chosen by a sched.Policy from fresh cluster load reports),
// or back to its origin when it has finished.
//
// A node owns an LP from the moment it acknowledges it until another node or
// its origin acknowledges it; it keeps no other per-request state, and never
// keeps an LP it could not hand on: a step it cannot route fails the entry so
// the caller sees why. It does not speak HTTP to clients (that is the
// gateway) and does not run wasm itself (that is node/engine).
package node
