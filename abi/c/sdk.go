// Package c carries the C SDK, tsubame.h, inside Go programs: `tsubame new
// --lang c` vendors it into a new component. The header is the SDK; this
// package only embeds it and is never part of a component.
package c

import _ "embed"

// Header is tsubame.h.
//
//go:embed tsubame.h
var Header []byte
