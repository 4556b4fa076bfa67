//go:build !linux

package main

import "errors"

// niceAll is Linux-only (see bench_paper_linux.go); elsewhere a joining
// node's start-up competes with the running nodes at equal priority.
func niceAll(int) error { return errors.New("per-thread nice is only set on Linux") }
