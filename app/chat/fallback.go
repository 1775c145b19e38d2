package chat

import (
	"sort"
	"strings"
	"sync"
)

// FallbackStorage is a Storage that keeps in memory what the underlying
// storage refuses (full, or blocked by the user), so the outbox and the
// room cache go on working in this tab. What lives only in memory is lost
// on reload and is not seen by other tabs; Sessions tells the UI when that
// is the case for the session.
type FallbackStorage struct {
	under Storage

	mu  sync.Mutex
	mem map[string]string
}

// NewFallbackStorage wraps under.
func NewFallbackStorage(under Storage) *FallbackStorage {
	return &FallbackStorage{under: under, mem: map[string]string{}}
}

// Get returns the value of key, from memory first.
func (s *FallbackStorage) Get(key string) (string, bool) {
	s.mu.Lock()
	v, ok := s.mem[key]
	s.mu.Unlock()
	if ok {
		return v, true
	}
	return s.under.Get(key)
}

// Set stores value, in memory when the underlying storage refuses it. It
// never fails.
func (s *FallbackStorage) Set(key, value string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.under.Set(key, value); err != nil {
		s.mem[key] = value
		return nil
	}
	delete(s.mem, key)
	return nil
}

// Del removes key from both.
func (s *FallbackStorage) Del(key string) {
	s.mu.Lock()
	delete(s.mem, key)
	s.mu.Unlock()
	s.under.Del(key)
}

// Keys lists the keys with the prefix in both, sorted.
func (s *FallbackStorage) Keys(prefix string) []string {
	keys := s.under.Keys(prefix)
	s.mu.Lock()
	for k := range s.mem {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	s.mu.Unlock()
	sort.Strings(keys)
	return slicesCompact(keys)
}

func slicesCompact(s []string) []string {
	out := s[:0]
	for i, k := range s {
		if i == 0 || k != s[i-1] {
			out = append(out, k)
		}
	}
	return out
}
