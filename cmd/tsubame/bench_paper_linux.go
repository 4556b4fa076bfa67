package main

import (
	"errors"
	"os"
	"strconv"
	"syscall"
)

// niceAll sets the nice value of every thread of this process: Linux
// applies nice per thread, and a thread inherits its creator's, so setting
// all present threads covers the Go runtime's later ones too. Raising
// priority again (a lower value) needs root or CAP_SYS_NICE.
func niceAll(prio int) error {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return err
	}
	var errs []error
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		if err := syscall.Setpriority(syscall.PRIO_PROCESS, tid, prio); err != nil && !errors.Is(err, syscall.ESRCH) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
