//go:build !unix

package evalharness

import "os"

// terminate: without SIGTERM a node process is killed.
var terminate = os.Kill
