//go:build unix

package cputime

import (
	"syscall"
	"time"
)

func self() (time.Duration, bool) { return rusage(syscall.RUSAGE_SELF) }

func children() (time.Duration, bool) { return rusage(syscall.RUSAGE_CHILDREN) }

func rusage(who int) (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(who, &ru); err != nil {
		return 0, false
	}
	tv := func(t syscall.Timeval) time.Duration {
		return time.Duration(t.Sec)*time.Second + time.Duration(t.Usec)*time.Microsecond
	}
	return tv(ru.Utime) + tv(ru.Stime), true
}
