//go:build unix

package evalharness

import "syscall"

// terminate asks a node process for a graceful stop.
var terminate = syscall.SIGTERM
