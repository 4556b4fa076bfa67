//go:build unix

package evalharness

import "syscall"

// terminate asks a server process for a graceful stop; reloadSignal makes
// nginx reread its configuration.
var (
	terminate    = syscall.SIGTERM
	reloadSignal = syscall.SIGHUP
)
