//go:build unix

package execd

import "syscall"

func signalFlush(pid int) error {
	return syscall.Kill(pid, syscall.SIGUSR1)
}
