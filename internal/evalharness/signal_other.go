//go:build !unix

package evalharness

import "os"

// Without SIGTERM and SIGHUP a server process is killed, and nginx cannot
// be reloaded.
var (
	terminate    = os.Kill
	reloadSignal = os.Interrupt
)
