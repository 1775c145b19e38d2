package e2e

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A browser whose localStorage refuses every write (full, or blocked):
// the person joins, stays in the room, is told that a reload will forget
// the name, and can still write.
func TestStorageRefusedKeepsSessionInMemory(t *testing.T) {
	srv := startServer(t)
	b := newBrowser(t)
	tb := b.firstTab("alice")
	tb.initScript(`Storage.prototype.setItem = function () { throw new DOMException('refused by the test', 'QuotaExceededError'); };`)
	tb.enterLobby(srv.URL, "alice")
	tb.waitFor("the storage banner", `!document.querySelector('[data-testid=storage]').hidden`, 10*time.Second)
	require.Zero(t, eval[int](tb, `localStorage.length`), "nothing was stored")
	tb.send("written without storage")
	tb.waitText("written without storage", 10*time.Second)
	tb.waitFor("marked sent", `document.querySelector('[data-testid=log] li.own[data-kind=text]')?.dataset.state === 'sent'`, 10*time.Second)
	require.Equal(t, 1, count(srv.history(t, "lobby"), "written without storage"))
	tb.screenshot("storage-refused")
}
