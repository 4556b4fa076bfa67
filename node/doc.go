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
//
// The root package is the runner (run queue, workers, rescheduling) and the
// wiring. Each other concern is a room of its own, reached through a small
// interface it declares: node/install (hot install: module store, manifest,
// fetches from peers), node/versions (how long old module versions are
// kept), node/autogrow (when to install on an idle node), node/admin (the
// admin HTTP server), node/blob (large values by reference). New builds
// every part whole, transport and membership first.
package node
