package boltstore

import bolt "go.etcd.io/bbolt"

// HighWater is the extent of the file's pages in use or free, which bolt
// only ever raises: the file's real growth, finer than its size (grown in
// large steps).
func (s *Store) HighWater() int64 {
	var n int64
	_ = s.db.View(func(tx *bolt.Tx) error {
		n = tx.Size()
		return nil
	})
	return n
}
