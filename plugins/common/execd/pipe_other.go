//go:build !linux

package execd

import "os"

// GrowPipe does nothing where pipes cannot be resized.
func GrowPipe(*os.File) int { return 0 }
