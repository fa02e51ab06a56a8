//go:build !linux

package execd

import (
	"io"
	"os"
)

// GrowPipe does nothing where pipes cannot be resized.
func GrowPipe(*os.File) int { return 0 }

// Pollable returns f: stdin and stdout stay as the runtime opened them.
func Pollable(f *os.File) *os.File { return f }

// Paced returns f: stdin and stdout stay as the runtime opened them.
func Paced(f *os.File) io.ReadWriter { return f }
