// Package e2e holds the multi-process end-to-end tests: they run the built
// tsubame binary ($TSUBAME_BIN, or a fresh `go build`) as separate node and
// gateway processes configured by TOML files, on loopback only. The package
// has no code of its own.
package e2e
