// Package kv is the key-value capability of Tsubame components (ABI.md
// §10): the backends buckets live on (memory, embedded and the default;
// Redis, shared by a cluster), the grants that say which component may use
// which bucket, and the journal that makes every operation of a step apply
// once however often the step runs (docs/guarantees.md).
//
// A Store implements wasmhost.KV, so wasmhost reaches it through that one
// method; the node builds the Store from the [kv] section of its config and
// the admin API reads and writes buckets through it.
//
// kv never runs components and never decides what a step does with an
// answer: an unavailable backend is a status the guest sees, not a failure
// kv applies to the LP.
package kv
