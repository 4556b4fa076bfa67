//go:build !unix

package cputime

import "time"

func self() (time.Duration, bool) { return 0, false }

func children() (time.Duration, bool) { return 0, false }
