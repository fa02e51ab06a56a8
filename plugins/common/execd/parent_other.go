//go:build !unix

package execd

import "errors"

func signalFlush(int) error {
	return errors.New("asking Telegraf to flush needs SIGUSR1, which this system lacks")
}
