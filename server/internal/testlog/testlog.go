// Package testlog holds what tests need to read a server's log while it
// writes.
package testlog

import (
	"bytes"
	"sync"
)

// Buffer is an io.Writer for a log that a test reads (String) while the
// server's goroutines write to it.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
