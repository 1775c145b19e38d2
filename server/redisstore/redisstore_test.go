package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/parley-chat/parley/server/internal/redistest"
	"github.com/parley-chat/parley/server/queue"
	"github.com/parley-chat/parley/server/redisstore"
	"github.com/parley-chat/parley/server/storetest"
	"github.com/parley-chat/parley/shared"
)

func TestMain(m *testing.M) {
	// go-redis logs each failed dial; the tests kill Redis on purpose.
	redis.SetLogger(quiet{})
	goleak.VerifyTestMain(m)
}

type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

func text(room, author, body, id string) shared.Message {
	return shared.Message{Room: room, Kind: shared.KindText, Author: author, Text: body, ClientMsgID: id,
		SentAt: time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)}
}

// newStore returns a Store on its own client, as each Parley process has.
func newStore(t testing.TB, srv *redistest.Server, opt redisstore.Options) *redisstore.Store {
	t.Helper()
	s, err := redisstore.New(srv.Client(), opt)
	require.NoError(t, err)
	return s
}

var prefixes atomic.Int64

// TestConformance runs the suite every store passes; subtests share one
// Redis, each under a prefix of its own.
func TestConformance(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	storetest.Run(t, func(t *testing.T) queue.Store {
		s := newStore(t, srv, redisstore.Options{Prefix: fmt.Sprintf("c%d:", prefixes.Add(1))})
		t.Cleanup(func() { require.NoError(t, s.Close()) })
		return s
	})
}

func TestOpen(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	ctx := context.Background()
	s, err := redisstore.Open(ctx, srv.URL(), redisstore.Options{})
	require.NoError(t, err)
	_, err = s.Append(ctx, []shared.Message{text("r", "a", "hi", "")})
	require.NoError(t, err)
	require.Equal(t, int64(1), srv.Do("EXISTS", "parley:log:r"), "default prefix")
	require.NoError(t, s.Close())

	_, err = redisstore.Open(ctx, "redis://127.0.0.1:1/0", redisstore.Options{})
	require.Error(t, err, "an unreachable Redis fails at start")

	srv.Do("CONFIG", "SET", "maxmemory-policy", "allkeys-lru")
	_, err = redisstore.Open(ctx, srv.URL(), redisstore.Options{})
	require.ErrorContains(t, err, "allkeys-lru would evict messages")
	srv.Do("CONFIG", "SET", "maxmemory-policy", "volatile-lru")
	s, err = redisstore.Open(ctx, srv.URL(), redisstore.Options{})
	require.NoError(t, err)
	require.NoError(t, s.Close())

	retrying := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer retrying.Close()
	_, err = redisstore.New(retrying, redisstore.Options{})
	require.ErrorIs(t, err, redisstore.ErrRetryingClient)
}

// Two processes appending to one room at the same instant: every seq is
// taken exactly once, with no hole.
func TestTwoStoresAppendConcurrently(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	ctx := context.Background()
	stores := []*redisstore.Store{newStore(t, srv, redisstore.Options{}), newStore(t, srv, redisstore.Options{})}
	const perWorker, workers = 100, 8
	var (
		mu   sync.Mutex
		seqs = map[uint64]string{}
		wg   sync.WaitGroup
	)
	start := make(chan struct{})
	for w := range workers {
		s := stores[w%2]
		wg.Go(func() {
			<-start
			for i := 0; i < perWorker; i += 2 { // batches of two
				id := fmt.Sprintf("w%d-%d", w, i)
				res, err := s.Append(ctx, []shared.Message{text("r", id, "a", id), text("r", id, "b", "")})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				for _, r := range res {
					if prev, ok := seqs[r.Message.Seq]; ok {
						t.Errorf("seq %d taken by %s and %s", r.Message.Seq, prev, id)
					}
					seqs[r.Message.Seq] = id
				}
				mu.Unlock()
				if res[1].Message.Seq != res[0].Message.Seq+1 {
					t.Errorf("batch got seqs %d and %d: another append came between", res[0].Message.Seq, res[1].Message.Seq)
				}
			}
		})
	}
	close(start)
	wg.Wait()
	const total = perWorker * workers
	require.Len(t, seqs, total)
	for seq := uint64(1); seq <= total; seq++ {
		require.Contains(t, seqs, seq, "no hole")
	}
	st, err := stores[0].LoadRoom(ctx, "r")
	require.NoError(t, err)
	require.EqualValues(t, total, st.Last)
	msgs, err := stores[1].Range(ctx, "r", 1, total, total)
	require.NoError(t, err)
	require.Len(t, msgs, total)
}

// The same client_msg_id sent through two stores at once is stored once.
func TestIdempotentAcrossStores(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	ctx := context.Background()
	a, b := newStore(t, srv, redisstore.Options{}), newStore(t, srv, redisstore.Options{})
	var wg sync.WaitGroup
	results := make([]queue.Result, 2)
	for i, s := range []*redisstore.Store{a, b} {
		wg.Go(func() {
			res, err := s.Append(ctx, []shared.Message{text("r", "alice", "hi", "same")})
			if err != nil {
				t.Error(err)
				return
			}
			results[i] = res[0]
		})
	}
	wg.Wait()
	require.NotEqual(t, results[0].Duplicate, results[1].Duplicate, "exactly one is the original")
	require.Equal(t, results[0].Message, results[1].Message)
	st, err := a.LoadRoom(ctx, "r")
	require.NoError(t, err)
	require.EqualValues(t, 1, st.Last)

	ttl := srv.Do("TTL", "parley:id:r\x00alice\x00same").(int64)
	require.InDelta(t, 24*3600, ttl, 60, "the idempotency key is kept a day")
}

// LoadRoom of a room without messages writes nothing for the room, and the
// first append creates it with the epoch LoadRoom reported.
func TestLoadRoomCreatesNoRoom(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	ctx := context.Background()
	s := newStore(t, srv, redisstore.Options{})
	st, err := s.LoadRoom(ctx, "ghost")
	require.NoError(t, err)
	require.Equal(t, queue.RoomState{Epoch: st.Epoch, First: 1, Last: 0}, st)
	for _, room := range []string{"a", "b", "c"} {
		_, err := s.LoadRoom(ctx, room)
		require.NoError(t, err)
	}
	require.Equal(t, []any{"parley:incarnation"}, srv.Do("KEYS", "*"), "only the data set's incarnation is written")

	res, err := s.Append(ctx, []shared.Message{text("ghost", "a", "boo", "")})
	require.NoError(t, err)
	require.EqualValues(t, 1, res[0].Message.Seq)
	after, err := s.LoadRoom(ctx, "ghost")
	require.NoError(t, err)
	require.Equal(t, st.Epoch, after.Epoch, "the first append keeps the epoch an empty room showed")
}

// A room whose meta key vanished (evicted, deleted) while its log did not
// starts over with an epoch no reader can hold.
func TestLostMetaStartsNewEpoch(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	ctx := context.Background()
	s := newStore(t, srv, redisstore.Options{})
	_, err := s.Append(ctx, []shared.Message{text("r", "a", "1", "c1"), text("r", "a", "2", "")})
	require.NoError(t, err)
	before, err := s.LoadRoom(ctx, "r")
	require.NoError(t, err)
	srv.Do("DEL", "parley:meta:r")

	after, err := s.LoadRoom(ctx, "r")
	require.NoError(t, err)
	require.NotEqual(t, before.Epoch, after.Epoch)
	require.Equal(t, queue.RoomState{Epoch: after.Epoch, First: 1, Last: 0}, after)
	res, err := s.Append(ctx, []shared.Message{text("r", "a", "1 again", "c1")})
	require.NoError(t, err)
	require.False(t, res[0].Duplicate, "an idempotency key of the old epoch does not match")
	require.EqualValues(t, 1, res[0].Message.Seq)
	msgs, err := s.Range(ctx, "r", 1, 10, 10)
	require.NoError(t, err)
	require.Equal(t, []shared.Message{res[0].Message}, msgs, "the old log is gone")
}

func TestMaxLenTrimsOldest(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	ctx := context.Background()
	s := newStore(t, srv, redisstore.Options{MaxLen: 10})
	var first queue.Result
	for i := range 35 {
		res, err := s.Append(ctx, []shared.Message{text("r", "a", fmt.Sprint(i), fmt.Sprint(i))})
		require.NoError(t, err)
		if i == 0 {
			first = res[0]
		}
	}
	st, err := s.LoadRoom(ctx, "r")
	require.NoError(t, err)
	require.EqualValues(t, 26, st.First)
	require.EqualValues(t, 35, st.Last)
	msgs, err := s.Range(ctx, "r", 1, 100, 100)
	require.NoError(t, err)
	require.Len(t, msgs, 10)
	require.EqualValues(t, 26, msgs[0].Seq)

	// The original has left the Stream but its key lives: still a
	// duplicate, with the original's seq.
	res, err := s.Append(ctx, []shared.Message{text("r", "a", "0", "0")})
	require.NoError(t, err)
	require.True(t, res[0].Duplicate)
	require.Equal(t, first.Message, res[0].Message)
}

// A message Redis refuses ends the batch: those before it are stored and
// reported, those after it are not stored.
func TestPartialFailure(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	ctx := context.Background()
	s := newStore(t, srv, redisstore.Options{})
	srv.Do("HSET", "parley:meta:bad", "epoch", "e", "last", "0")
	srv.Do("SET", "parley:log:bad", "not a stream")

	res, err := s.Append(ctx, []shared.Message{text("ok", "a", "1", ""), text("bad", "a", "2", ""), text("later", "a", "3", "")})
	var pe *redisstore.PartialError
	require.ErrorAs(t, err, &pe)
	require.Equal(t, 1, pe.Stored)
	require.Len(t, res, 1)
	require.EqualValues(t, 1, res[0].Message.Seq)
	for room, last := range map[string]uint64{"ok": 1, "later": 0} {
		st, err := s.LoadRoom(ctx, room)
		require.NoError(t, err)
		require.Equal(t, last, st.Last, room)
	}
}

// An unreachable Redis is an error, never a silent success, and the store
// works again once Redis is back (the script is reloaded into the new
// process by itself).
func TestRedisDownIsAnError(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	s := newStore(t, srv, redisstore.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := s.Append(ctx, []shared.Message{text("r", "a", "1", "")})
	require.NoError(t, err)
	srv.Kill()
	_, err = s.Append(ctx, []shared.Message{text("r", "a", "2", "")})
	require.Error(t, err)
	_, err = s.LoadRoom(ctx, "r")
	require.Error(t, err)
	_, err = s.Range(ctx, "r", 1, 10, 10)
	require.Error(t, err)
	srv.Restart()
	res, err := s.Append(ctx, []shared.Message{text("r", "a", "3", "")})
	require.NoError(t, err)
	require.EqualValues(t, 1, res[0].Message.Seq, "without persistence the room starts again")
}

// With appendonly yes and appendfsync always, a killed Redis comes back with
// every acknowledged message and the same epoch, and idempotency holds.
func TestAOFAlwaysKeepsEverythingAcknowledged(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{AOF: true, AppendFsync: "always"})
	ctx := context.Background()
	s := newStore(t, srv, redisstore.Options{})
	var acked []shared.Message
	for i := range 50 {
		res, err := s.Append(ctx, []shared.Message{text("r", "a", fmt.Sprint(i), fmt.Sprint("c", i))})
		require.NoError(t, err)
		acked = append(acked, res[0].Message)
	}
	before, err := s.LoadRoom(ctx, "r")
	require.NoError(t, err)
	require.NotEmpty(t, srv.AOFFiles())

	srv.Kill()
	srv.Restart()
	after, err := s.LoadRoom(ctx, "r")
	require.NoError(t, err)
	require.Equal(t, before, after, "same epoch, same seqs")
	msgs, err := s.Range(ctx, "r", 1, 100, 100)
	require.NoError(t, err)
	require.Equal(t, acked, msgs)
	res, err := s.Append(ctx, []shared.Message{text("r", "a", "7", "c7"), text("r", "a", "new", "")})
	require.NoError(t, err)
	require.True(t, res[0].Duplicate)
	require.Equal(t, acked[7], res[0].Message)
	require.EqualValues(t, 51, res[1].Message.Seq)
}

// Without persistence a restart loses the rooms, and their epochs change so
// that clients are told to reset rather than trust their cursors.
func TestNoPersistenceRestartChangesEpoch(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	ctx := context.Background()
	s := newStore(t, srv, redisstore.Options{})
	_, err := s.Append(ctx, []shared.Message{text("r", "a", "1", "")})
	require.NoError(t, err)
	before, err := s.LoadRoom(ctx, "r")
	require.NoError(t, err)
	empty, err := s.LoadRoom(ctx, "empty")
	require.NoError(t, err)

	srv.Kill()
	srv.Restart()
	after, err := s.LoadRoom(ctx, "r")
	require.NoError(t, err)
	require.NotEqual(t, before.Epoch, after.Epoch)
	require.Zero(t, after.Last)
	emptyAfter, err := s.LoadRoom(ctx, "empty")
	require.NoError(t, err)
	require.NotEqual(t, empty.Epoch, emptyAfter.Epoch, "a new data set, new epochs everywhere")
}

func TestRangeDecodesErrors(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	s := newStore(t, srv, redisstore.Options{})
	srv.Do("XADD", "parley:log:r", "1-0", "m", "{not json")
	_, err := s.Range(context.Background(), "r", 1, 1, 1)
	require.ErrorContains(t, err, "decode message 1")
}

func TestSnapshot(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	ctx := context.Background()
	s := newStore(t, srv, redisstore.Options{MaxLen: 4})
	empty, err := s.LoadRoom(ctx, "r")
	require.NoError(t, err)
	st, msgs, err := s.Snapshot(ctx, "r", 1, 10, 10)
	require.NoError(t, err)
	require.Equal(t, empty, st, "a room without messages, as LoadRoom reports it")
	require.Empty(t, msgs)
	require.Equal(t, []any{"parley:incarnation"}, srv.Do("KEYS", "*"))

	for i := range 6 {
		_, err := s.Append(ctx, []shared.Message{text("r", "a", fmt.Sprint(i), "")})
		require.NoError(t, err)
	}
	st, msgs, err = s.Snapshot(ctx, "r", 4, 5, 10)
	require.NoError(t, err)
	require.Equal(t, queue.RoomState{Epoch: empty.Epoch, First: 3, Last: 6}, st)
	want, err := s.Range(ctx, "r", 4, 5, 10)
	require.NoError(t, err)
	require.Equal(t, want, msgs)
	require.Len(t, msgs, 2)

	_, msgs, err = s.Snapshot(ctx, "r", 1, 10, 0)
	require.NoError(t, err)
	require.Empty(t, msgs, "limit 0 reads the state only")

	srv.Do("DEL", "parley:meta:r")
	st, msgs, err = s.Snapshot(ctx, "r", 1, 10, 10)
	require.NoError(t, err)
	require.NotEqual(t, empty.Epoch, st.Epoch)
	require.Zero(t, st.Last)
	require.Empty(t, msgs)
}

// A room deleted by hand (meta and log) is not given its old epoch back,
// although both keys are gone: cursors of that epoch would point past the
// new log's end.
func TestDeletedRoomGetsNewEpoch(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	ctx := context.Background()
	s := newStore(t, srv, redisstore.Options{})
	_, err := s.Append(ctx, []shared.Message{text("r", "a", "1", "")})
	require.NoError(t, err)
	before, err := s.LoadRoom(ctx, "r")
	require.NoError(t, err)
	srv.Do("DEL", "parley:meta:r", "parley:log:r")

	res, err := s.Append(ctx, []shared.Message{text("r", "a", "1 again", "")})
	require.NoError(t, err)
	require.EqualValues(t, 1, res[0].Message.Seq)
	after, err := s.LoadRoom(ctx, "r")
	require.NoError(t, err)
	require.NotEqual(t, before.Epoch, after.Epoch)
}

// A Redis over maxmemory (noeviction) refuses the whole batch before the
// script starts: an error, and nothing of the batch stored.
func TestOutOfMemoryStoresNothing(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	ctx := context.Background()
	s := newStore(t, srv, redisstore.Options{})
	_, err := s.Append(ctx, []shared.Message{text("r", "a", "before", "")})
	require.NoError(t, err)
	srv.Do("CONFIG", "SET", "maxmemory-policy", "noeviction")
	srv.Do("CONFIG", "SET", "maxmemory", "1")
	_, err = s.Append(ctx, []shared.Message{text("r", "a", "1", ""), text("q", "a", "2", "")})
	require.ErrorContains(t, err, "OOM")
	var pe *redisstore.PartialError
	require.False(t, errors.As(err, &pe), "refused as a whole, not part way")
	st, err := s.LoadRoom(ctx, "r")
	require.NoError(t, err, "reads go on while Redis is full")
	require.EqualValues(t, 1, st.Last)
	_, err = s.LoadRoom(ctx, "new")
	require.NoError(t, err)
	_, _, err = s.Snapshot(ctx, "r", 1, 1, 1)
	require.NoError(t, err)
	srv.Do("CONFIG", "SET", "maxmemory", "0")
	for room, last := range map[string]uint64{"r": 1, "q": 0} {
		st, err := s.LoadRoom(ctx, room)
		require.NoError(t, err)
		require.Equal(t, last, st.Last, room)
	}
}

// Redis killed in the middle of traffic, with appendonly yes and appendfsync
// always: after the restart every message whose Append returned nil is there
// with its seq, the log has no hole, and the epoch is the same. Appends that
// failed may or may not be there (their reply was lost), never twice: each
// carries a client_msg_id, and retrying it after the restart finds it.
func TestAOFAlwaysKillMidTraffic(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{AOF: true, AppendFsync: "always"})
	s := newStore(t, srv, redisstore.Options{})
	ctx := context.Background()
	epoch, err := s.LoadRoom(ctx, "r")
	require.NoError(t, err)

	var (
		mu     sync.Mutex
		acked  = map[string]shared.Message{} // client_msg_id → as stored
		failed []shared.Message
		wg     sync.WaitGroup
		stop   = make(chan struct{})
	)
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				m := text("r", fmt.Sprint("w", w), fmt.Sprint(i), fmt.Sprintf("w%d-%d", w, i))
				actx, cancel := context.WithTimeout(ctx, 2*time.Second)
				res, err := s.Append(actx, []shared.Message{m})
				cancel()
				mu.Lock()
				if err == nil {
					acked[m.ClientMsgID] = res[0].Message
				} else {
					failed = append(failed, m)
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		})
	}
	time.Sleep(300 * time.Millisecond)
	srv.Kill()
	close(stop)
	wg.Wait()
	require.NotEmpty(t, acked)
	require.NotEmpty(t, failed, "every writer was cut off by the kill")

	srv.Restart()
	after, err := s.LoadRoom(ctx, "r")
	require.NoError(t, err)
	require.Equal(t, epoch.Epoch, after.Epoch)
	msgs, err := s.Range(ctx, "r", 1, after.Last, int(after.Last))
	require.NoError(t, err)
	require.Len(t, msgs, int(after.Last), "no hole")
	byID := map[string]shared.Message{}
	for i, m := range msgs {
		require.EqualValues(t, i+1, m.Seq)
		byID[m.ClientMsgID] = m
	}
	for id, m := range acked {
		require.Equal(t, m, byID[id], "acknowledged %s survives with its seq", id)
	}
	// Retrying the failed ones stores each exactly once.
	for _, m := range failed {
		res, err := s.Append(ctx, []shared.Message{m})
		require.NoError(t, err)
		_, stored := byID[m.ClientMsgID]
		require.Equal(t, stored, res[0].Duplicate, "%s: a duplicate exactly when the lost reply's append ran", m.ClientMsgID)
	}
	t.Logf("%d acknowledged, %d cut off (%d of them stored anyway)", len(acked), len(failed), len(msgs)-len(acked))
}
