package e2e

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Two people in two browser contexts: both join, one writes, the other sees
// it; then the other answers.
func TestTwoContextsChat(t *testing.T) {
	srv := startServer(t)
	b := newBrowser(t)
	alice := b.firstTab("alice")
	bob := b.isolatedTab("bob")

	alice.enterLobby(srv.URL, "alice")
	bob.enterLobby(srv.URL, "bob")

	alice.send("hello from alice")
	bob.waitText("hello from alice", 10*time.Second)
	bob.send("hi alice, 你好 👋")
	alice.waitText("hi alice, 你好 👋", 10*time.Second)

	// Own messages are set apart and marked sent; the other's are not. The
	// other side can receive a message through its poll before the sender's
	// page has the answer to its send, so wait for the sent state.
	alice.waitFor("alice's own message sent", `document.querySelector('[data-testid=log] li.own[data-kind=text]')?.dataset.state === 'sent'`, 10*time.Second)
	bob.waitFor("bob's own message sent", `document.querySelectorAll('[data-testid=log] li.own[data-kind=text]').length === 1`, 10*time.Second)
	require.Equal(t, 1, eval[int](alice, `document.querySelectorAll('[data-testid=log] li.own[data-kind=text]').length`), "bob's message is not alice's own")
	// Both see each other in the members list.
	alice.waitFor("bob in members", `[...document.querySelectorAll('[data-testid=members] li')].some(li => li.dataset.name === 'bob')`, 10*time.Second)
	bob.waitFor("alice in members", `[...document.querySelectorAll('[data-testid=members] li')].some(li => li.dataset.name === 'alice')`, 10*time.Second)
	alice.screenshot("chat")
}

// "/" with a session goes back to the last room by replacing its history
// entry: before, it pushed the room's URL after drawing the join form, and
// Back returned to a "/" that forwarded again, so Back never left.
func TestRootGoesToLastRoomWithoutANewHistoryEntry(t *testing.T) {
	srv := startServer(t)
	b := newBrowser(t)
	alice := b.firstTab("alice")
	alice.enterLobby(srv.URL, "alice")
	before := eval[int](alice, `history.length`)
	alice.navigate(srv.URL + "/")
	alice.inRoom("lobby")
	require.Equal(t, before+1, eval[int](alice, `history.length`), "one entry for the navigation, none for the forward")
}
