package redisstore_test

import (
	"context"
	"log"
	"net/http"

	"github.com/parley-chat/parley/server/redisstore"
)

// How an instance wires the store and its notifier (compiled, not run: it
// needs a Redis at the address).
func Example() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	store, err := redisstore.Open(ctx, "redis://127.0.0.1:6379/0", redisstore.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	notifier := store.NewNotifier(redisstore.NotifierOptions{
		OnNotify: func(n redisstore.Notification) {
			// If the room is loaded at n.Epoch with last == n.Seq-1, append
			// n.Message to its window and wake its waiters; otherwise fill
			// it with store.Snapshot first. Return quickly.
		},
		OnResync: func() {
			// Notifications may have been lost: check every loaded room
			// with store.Snapshot (epoch and last) and fill or reset it.
		},
	})
	go func() { _ = notifier.Run(ctx) }()

	http.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		if !notifier.Healthy() {
			// The real handler writes shared.ErrorResponse with
			// shared.CodeUnavailable.
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		// serve from the hub
	})
}
