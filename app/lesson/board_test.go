package lesson_test

import (
	"testing"
	"time"

	"github.com/parley-chat/parley/app/lesson"
	"github.com/stretchr/testify/require"
)

var t0 = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

func TestCountersDelaysAndMatching(t *testing.T) {
	b := lesson.NewBoard("learn-ab12")
	one := b.Send("hello")
	two := b.Send("hello") // the same text twice: two messages
	b.Acked(one, at(100))

	// Short: an empty answer, then both messages and a stranger's.
	r := b.Started(lesson.Short, at(0))
	b.Answered(lesson.Short, r, at(5), 40, nil, false)
	r = b.Started(lesson.Short, at(2000))
	b.Answered(lesson.Short, r, at(2010), 300, []lesson.Incoming{
		{Author: "learn-ab12", Text: "hello"}, {Author: "bob", Text: "hello"}, {Author: "learn-ab12", Text: "hello"},
	}, false)
	c := b.Columns[lesson.Short]
	require.Equal(t, 2, c.Requests)
	require.Equal(t, 1, c.Empty)
	require.Equal(t, 2, c.Received)
	require.Equal(t, 1, c.Other, "bob's message is not the page's")
	require.Equal(t, int64(340), c.Bytes)
	// Only one was acknowledged: one delay, 2010-100 ms.
	require.Equal(t, 1, c.Delayed)
	require.Equal(t, 1910*time.Millisecond, c.DelayMax)

	// Long got the second message before its acknowledgement: delay 0
	// once the acknowledgement comes.
	r = b.Started(lesson.Long, at(0))
	b.Answered(lesson.Long, r, at(150), 120, []lesson.Incoming{{Author: "learn-ab12", Text: "hello"}}, false)
	r = b.Started(lesson.Long, at(150))
	b.Answered(lesson.Long, r, at(180), 120, []lesson.Incoming{{Author: "learn-ab12", Text: "hello"}}, false)
	b.Acked(two, at(200))
	l := b.Columns[lesson.Long]
	require.Equal(t, 2, l.Received)
	require.Equal(t, 2, l.Delayed)
	require.Equal(t, 50*time.Millisecond, l.DelayMax)
	require.Equal(t, 25*time.Millisecond, l.DelayAvg())
	require.Equal(t, []time.Duration{50 * time.Millisecond, 0}, b.Delays(lesson.Long))
	// The short client's delay for the second message was added at its ack.
	require.Equal(t, 2, c.Delayed)

	// The textbook has texts only; a third "hello" is a duplicate.
	for i := 0; i < 3; i++ {
		r = b.Started(lesson.Textbook, at(300+i))
		b.Answered(lesson.Textbook, r, at(400+i), 30, []lesson.Incoming{{Text: "hello"}}, false)
	}
	tb := b.Columns[lesson.Textbook]
	require.Equal(t, 2, tb.Received)
	require.Equal(t, 1, tb.Duplicates)
	require.Len(t, tb.Dots, 2)

	// A failure is counted, not as empty.
	r = b.Started(lesson.Textbook, at(500))
	b.Answered(lesson.Textbook, r, at(600), 0, nil, true)
	require.Equal(t, 1, tb.Errors)
	require.Equal(t, 0, tb.Empty)
	require.True(t, tb.Bars[len(tb.Bars)-1].Failed)
}

func TestReadyAndPrune(t *testing.T) {
	b := lesson.NewBoard("learn-ab12")
	require.False(t, b.AllReady())
	b.Ready(lesson.Long)
	require.True(t, b.IsReady(lesson.Long))
	require.False(t, b.IsReady(lesson.Short))
	for _, m := range lesson.Modes {
		b.Ready(m)
	}
	require.True(t, b.AllReady())

	r0 := b.Started(lesson.Short, at(0))
	b.Answered(lesson.Short, r0, at(10), 1, nil, false)
	r1 := b.Started(lesson.Short, at(1000)) // still in flight
	r2 := b.Started(lesson.Short, at(2000))
	b.Answered(lesson.Short, r2, at(2010), 1, nil, false)
	b.Prune(at(31000)) // the window starts at 1000 ms: r0 goes
	c := b.Columns[lesson.Short]
	require.Len(t, c.Bars, 2)
	// The numbers from Started still name the same requests.
	b.Answered(lesson.Short, r1, at(40000), 1, nil, false)
	require.Equal(t, at(40000), c.Bars[0].End)
	b.Prune(at(80000))
	require.Empty(t, c.Bars)
	r3 := b.Started(lesson.Short, at(80000))
	b.Answered(lesson.Short, r3, at(80001), 1, nil, false)
	require.Equal(t, at(80001), c.Bars[0].End)
}
