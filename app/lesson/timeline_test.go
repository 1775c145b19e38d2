package lesson_test

import (
	"testing"

	"github.com/parley-chat/parley/app/lesson"
	"github.com/stretchr/testify/require"
)

func TestLayout(t *testing.T) {
	b := lesson.NewBoard("learn-ab12")
	b.Send("m")
	now := at(40000) // the window is 10 s … 40 s
	span := lesson.TimelineWidth - lesson.Gutter - lesson.DotRadius
	x := func(ms int) float64 { return lesson.Gutter + float64(ms-10000)/30000*span }

	old := b.Started(lesson.Short, at(1000)) // ended before the window
	b.Answered(lesson.Short, old, at(1005), 1, nil, false)
	r := b.Started(lesson.Short, at(25000)) // answered at once
	b.Answered(lesson.Short, r, at(25000), 1, nil, false)
	r = b.Started(lesson.Long, at(5000)) // began before the window
	b.Answered(lesson.Long, r, at(28000), 1, []lesson.Incoming{{Author: "learn-ab12", Text: "m"}}, false)
	b.Started(lesson.Long, at(28000)) // in flight
	b.Started(lesson.Textbook, at(39000))

	tl := lesson.Layout(b, now)
	require.Len(t, tl.Lanes, 3)
	short, long, text := tl.Lanes[0], tl.Lanes[1], tl.Lanes[2]
	require.Equal(t, lesson.Short, short.Mode)
	require.Equal(t, lesson.Textbook, text.Mode)

	require.Len(t, short.Bars, 1, "the old request is off the picture")
	require.InDelta(t, x(25000), short.Bars[0].X, 1e-9)
	require.Equal(t, lesson.MinBarWidth, short.Bars[0].W)

	require.Len(t, long.Bars, 2)
	require.InDelta(t, lesson.Gutter, long.Bars[0].X, 1e-9, "clipped at the window's start")
	require.InDelta(t, x(28000)-lesson.Gutter, long.Bars[0].W, 1e-9)
	require.True(t, long.Bars[0].Got)
	require.True(t, long.Bars[1].InFlight)
	require.InDelta(t, x(40000), long.Bars[1].X+long.Bars[1].W, 1e-9, "in flight: drawn up to now")
	require.Len(t, long.Dots, 1)
	require.InDelta(t, x(28000), long.Dots[0].CX, 1e-9)
	require.InDelta(t, long.Y+lesson.LaneHeight/2, long.Dots[0].CY, 1e-9)

	// Two messages in one answer: two dots, one above the other.
	b2 := lesson.NewBoard("n")
	b2.Send("a")
	b2.Send("b")
	r = b2.Started(lesson.Short, at(30000))
	b2.Answered(lesson.Short, r, at(30001), 1, []lesson.Incoming{{Author: "n", Text: "a"}, {Author: "n", Text: "b"}}, false)
	dots := lesson.Layout(b2, now).Lanes[0].Dots
	require.Len(t, dots, 2)
	require.Equal(t, dots[0].CX, dots[1].CX)
	require.GreaterOrEqual(t, dots[0].CY-dots[1].CY, 2*lesson.DotRadius, "apart, not on top of each other")

	// Lanes stack without overlapping; the axis is under the last one.
	require.Greater(t, long.Y, short.Y+short.H)
	require.Greater(t, text.Y, long.Y+long.H)
	require.Greater(t, tl.Height, text.Y+text.H)
	require.Equal(t, []int{30, 20, 10, 0}, []int{tl.Ticks[0].Ago, tl.Ticks[1].Ago, tl.Ticks[2].Ago, tl.Ticks[3].Ago})
	require.InDelta(t, lesson.Gutter, tl.Ticks[0].X, 1e-9)
	require.InDelta(t, x(40000), tl.Ticks[3].X, 1e-9)
	for _, l := range tl.Lanes {
		for _, r := range l.Bars {
			require.GreaterOrEqual(t, r.X, lesson.Gutter)
			require.LessOrEqual(t, r.X+r.W, tl.Width)
		}
	}
}
