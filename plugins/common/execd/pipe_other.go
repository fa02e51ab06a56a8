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

// NewPacedReader returns f: stdin stays as the runtime opened it.
func NewPacedReader(f *os.File) io.Reader { return f }
