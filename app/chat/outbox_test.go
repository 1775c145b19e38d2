package chat_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/parley-chat/parley/app/chat"
	"github.com/parley-chat/parley/shared"
	"github.com/stretchr/testify/require"
)

func TestOutboxOrderStateAndIsolation(t *testing.T) {
	st := chat.NewMemStorage()
	ob := chat.NewOutbox(st, "lobby")
	other := chat.NewOutbox(st, "lobby2") // a prefix of no other room's keys
	t0 := time.Unix(1700000000, 0)
	_, err := ob.Add("b", "second", t0.Add(time.Second))
	require.NoError(t, err)
	_, err = ob.Add("a", "first", t0)
	require.NoError(t, err)
	_, err = other.Add("z", "elsewhere", t0)
	require.NoError(t, err)

	items := ob.Items()
	require.Len(t, items, 2)
	require.Equal(t, "first", items[0].Text, "items come back in creation order, not id order")
	require.Equal(t, chat.ItemPending, items[0].State)

	require.True(t, ob.SetState("a", chat.ItemFailed, "text_too_long"))
	require.Equal(t, chat.ItemFailed, ob.Items()[0].State)
	require.Equal(t, "text_too_long", ob.Items()[0].Code)

	require.True(t, ob.Remove("a"))
	require.False(t, ob.Remove("a"))
	require.Len(t, ob.Items(), 1)
	require.Len(t, other.Items(), 1)

	// A second Outbox on the same storage (another tab) sees the same items.
	require.Equal(t, "second", chat.NewOutbox(st, "lobby").Items()[0].Text)
}

func TestBackoffGrowsCapsAndResets(t *testing.T) {
	b := chat.Backoff{Base: 100 * time.Millisecond, Max: time.Second, Rand: func() float64 { return 0.999999 }}
	var got []time.Duration
	for i := 0; i < 6; i++ {
		got = append(got, b.Next().Round(time.Millisecond))
	}
	require.Equal(t, []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, time.Second, time.Second}, got)
	b.Rand = func() float64 { return 0 }
	require.Equal(t, 500*time.Millisecond, b.Next(), "jitter keeps at least half the delay")
	b.Reset()
	require.Equal(t, 50*time.Millisecond, b.Next())
}

func TestSessionStorage(t *testing.T) {
	st := chat.NewMemStorage()
	ss := chat.NewSessions(st, chat.NewMemLocker())
	_, ok := ss.Get()
	require.False(t, ok)
	require.NoError(t, ss.Save(chat.Session{Name: "李雷", Token: "t"}))
	s, ok := chat.NewSessions(st, chat.NewMemLocker()).Get()
	require.True(t, ok, "another tab sees the saved session")
	require.Equal(t, "李雷", s.Name)
	ss.Clear()
	_, ok = ss.Get()
	require.False(t, ok)
	chat.SaveLastRoom(st, "dev")
	require.Equal(t, "dev", chat.LastRoom(st))
}

// fullStorage refuses every write, like a full or blocked localStorage.
type fullStorage struct{ *chat.MemStorage }

func (fullStorage) Set(string, string) error { return errors.New("quota exceeded") }

// A session that storage refuses is kept in memory: the tab goes on
// instead of asking for a name again, and Stored says it is not shared.
func TestSessionFallsBackToMemoryWhenStorageFails(t *testing.T) {
	ss := chat.NewSessions(fullStorage{chat.NewMemStorage()}, chat.NewMemLocker())
	err := ss.Save(chat.Session{Name: "alice", Token: "t1"})
	require.Error(t, err)
	s, ok := ss.Get()
	require.True(t, ok)
	require.Equal(t, "t1", s.Token)
	require.False(t, ss.Stored())

	// Renewal works from memory too.
	renewed, err := ss.Renew(context.Background(), joinerFunc(func(name string) shared.SessionResponse {
		return shared.SessionResponse{Name: name, Token: "t2"}
	}), s)
	require.NoError(t, err)
	require.Equal(t, "t2", renewed.Token)
	s, _ = ss.Get()
	require.Equal(t, "t2", s.Token)

	ss.Clear()
	_, ok = ss.Get()
	require.False(t, ok)
	require.True(t, ss.Stored())
}

type joinerFunc func(name string) shared.SessionResponse

func (f joinerFunc) Join(_ context.Context, name string) (shared.SessionResponse, error) {
	return f(name), nil
}

// With storage refusing every write, the outbox and the room cache still
// work in this tab.
func TestFallbackStorageKeepsWhatStorageRefuses(t *testing.T) {
	under := fullStorage{chat.NewMemStorage()}
	require.NoError(t, under.MemStorage.Set("parley:v1:outbox:lobby:1:a", "stored"))
	st := chat.NewFallbackStorage(under)
	ob := chat.NewOutbox(st, "lobby")
	_, err := ob.Add("b", "in memory", time.Unix(2, 0))
	require.NoError(t, err)
	keys := st.Keys("parley:v1:outbox:lobby:")
	require.Len(t, keys, 2)
	items := ob.Items()
	require.Len(t, items, 1, "the unreadable stored value is skipped")
	require.Equal(t, "in memory", items[0].Text)
	require.True(t, ob.Remove("b"))
	require.Len(t, st.Keys("parley:v1:outbox:lobby:"), 1)
}
