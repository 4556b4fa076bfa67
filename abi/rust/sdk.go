// Package rust carries the Rust SDK (the tsubame crate) inside Go programs:
// `tsubame new --lang rust` vendors it into a new component. The crate is
// the SDK; this package only embeds it and is never part of a component.
package rust

import _ "embed"

// Lib is the crate's src/lib.rs; Manifest its Cargo.toml.
var (
	//go:embed src/lib.rs
	Lib []byte
	//go:embed Cargo.toml
	Manifest []byte
)
