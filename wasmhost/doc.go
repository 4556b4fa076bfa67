// Package wasmhost runs Tsubame components on wazero: given a module and a
// lightweight process, it runs one step of the process's active entry and
// reports what the component did (replied, called another component, or
// failed).
//
// It owns one wazero runtime with a compilation cache, the modules loaded
// into it (keyed by the SHA-256 of their bytes), a pool of warm instances per
// module, the per-step limits (memory pages, deadline, sizes), and the host
// functions of the "tsubame" import module that implement abi/ABI.md.
//
// wasmhost knows nothing of networks, nodes or scheduling, and it never
// modifies a Process: applying a step's Result is the caller's job (see
// node/engine).
package wasmhost
