// Package conformance checks that components written in every supported
// wasm language behave the same under the Tsubame ABI (abi/ABI.md).
//
// Each language has a module testdata/conformance_<lang>.wasm implementing
// the kinds of kinds.md (echo, fail, call, catch, cont, seq, loop, nondet,
// log, big, size, trap) with its SDK, or by hand for WAT (replay included).
// One table of behaviours runs against every module: replies, calls and
// resumes with
// continuations, nested and cross-language calls, failure codes and messages
// crossing languages, empty and limit-sized inputs and replies, logging,
// replay checks of the sequential style, and the ABI version check. Adding a
// language is adding its module to the list in conformance_test.go.
//
// The package holds tests and benchmarks only; it never runs in a node.
package conformance
