//go:build !linux

package park

import "log/slog"

// watcher does nothing where there is no epoll: a client that leaves a
// parked poll is noticed when its answer is written, at the latest when
// its wait ends.
type watcher struct{}

func newWatcher(*slog.Logger) (*watcher, error) { return &watcher{}, nil }
func (*watcher) add(*Spot)                      {}
func (*watcher) remove(*Spot)                   {}
func (*watcher) close() error                   { return nil }
