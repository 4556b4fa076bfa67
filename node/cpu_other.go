//go:build !unix

package node

import "time"

// processCPU is not measured here; load is then the run queue alone.
func processCPU() (time.Duration, bool) { return 0, false }
