// Package chat is the client-side logic of Parley, free of any browser or
// go-app dependency so it is tested with plain `go test`: the timeline that
// merges poll batches by seq, the outbox, backoff, the session's one owner,
// the room cache, and the Syncer that runs one long poll per room per
// browser (its leader side) and shares it between tabs (its follower side).
package chat

import (
	"encoding/json"
	"sort"
	"strings"
	"sync"
)

// Storage is a string key-value store shared by every tab of one browser
// (localStorage in the browser, MemStorage in tests). Writes of one key are
// atomic; there are no multi-key transactions, so data that tabs write
// concurrently lives under one key per item.
type Storage interface {
	Get(key string) (string, bool)
	Set(key, value string) error
	Del(key string)
	// Keys lists the keys starting with prefix, sorted.
	Keys(prefix string) []string
}

// MemStorage is an in-memory Storage, safe for concurrent use.
type MemStorage struct {
	mu sync.Mutex
	m  map[string]string
}

// NewMemStorage returns an empty MemStorage.
func NewMemStorage() *MemStorage { return &MemStorage{m: map[string]string{}} }

// Get returns the value of key.
func (s *MemStorage) Get(key string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[key]
	return v, ok
}

// Set stores value under key.
func (s *MemStorage) Set(key, value string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[key] = value
	return nil
}

// Del removes key.
func (s *MemStorage) Del(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, key)
}

// Keys lists the keys with the prefix, sorted.
func (s *MemStorage) Keys(prefix string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var keys []string
	for k := range s.m {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
}

func getJSON(s Storage, key string, v any) bool {
	raw, ok := s.Get(key)
	if !ok {
		return false
	}
	return json.Unmarshal([]byte(raw), v) == nil
}

func setJSON(s Storage, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return s.Set(key, string(b))
}

// Storage keys. They are versioned so that a future layout change can ignore
// old data instead of misreading it.
const (
	keySession   = "parley:v1:session"
	keyLastRoom  = "parley:v1:room"
	keyLang      = "parley:v1:lang"
	keyRoomCache = "parley:v1:cache:"  // + room
	keyOutbox    = "parley:v1:outbox:" // + room + ":" + order + ":" + id
)

// LastRoom is the room the browser was last in, "" if none.
func LastRoom(s Storage) string {
	v, _ := s.Get(keyLastRoom)
	return v
}

// SaveLastRoom remembers room, so that a reload of "/" lands back in it.
func SaveLastRoom(s Storage, room string) { _ = s.Set(keyLastRoom, room) }

// SavedLang is the UI language the user picked, "" if they never did.
func SavedLang(s Storage) string {
	v, _ := s.Get(keyLang)
	return v
}

// SaveLang remembers the UI language the user picked.
func SaveLang(s Storage, lang string) { _ = s.Set(keyLang, lang) }
