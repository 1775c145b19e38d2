package lesson

import "time"

// The timeline's drawing, in SVG user units: a gutter for the lane names
// on the left, one lane per client, the time axis at the bottom.
const (
	TimelineWidth = 600.0
	Gutter        = 100.0
	LaneHeight    = 26.0
	LaneGap       = 10.0
	AxisHeight    = 22.0
	DotRadius     = 4.0
	// MinBarWidth keeps a short poll's instant answer visible.
	MinBarWidth = 1.5
)

// Timeline is the geometry of the picture: pure numbers, drawn by the page.
type Timeline struct {
	Width, Height float64
	Lanes         []Lane
	Ticks         []Tick
}

// Lane is one client's row.
type Lane struct {
	Mode Mode
	// Y is the lane's top, H its height; LabelY the baseline of its name.
	Y, H, LabelY float64
	Bars         []Rect
	Dots         []Circle
}

// Rect is one request, from its start to its answer.
type Rect struct {
	X, Y, W, H float64
	// InFlight is a request not answered yet (drawn up to now); Got an
	// answer that carried one of the page's messages; Failed a failure.
	InFlight, Got, Failed bool
}

// Circle is one arrival.
type Circle struct{ CX, CY, R float64 }

// Tick is a mark of the time axis, Ago seconds before now.
type Tick struct {
	X   float64
	Ago int
}

// stack is the vertical offsets of the dots of one answer, in turn.
var stack = []float64{0, -2 * DotRadius, 2 * DotRadius}

// Layout places b's requests and arrivals of the last Window before now.
func Layout(b *Board, now time.Time) Timeline {
	from := now.Add(-Window)
	span := TimelineWidth - Gutter - DotRadius
	x := func(t time.Time) float64 {
		if t.Before(from) {
			t = from
		}
		if t.After(now) {
			t = now
		}
		return Gutter + float64(t.Sub(from))/float64(Window)*span
	}
	tl := Timeline{Width: TimelineWidth}
	y := 0.0
	for _, m := range Modes {
		c := b.Columns[m]
		lane := Lane{Mode: m, Y: y, H: LaneHeight, LabelY: y + LaneHeight/2 + 4}
		for _, bar := range c.Bars {
			end := bar.End
			if end.IsZero() {
				end = now
			}
			if end.Before(from) {
				continue
			}
			x0, x1 := x(bar.Start), x(end)
			w := x1 - x0
			if w < MinBarWidth {
				w = MinBarWidth
			}
			lane.Bars = append(lane.Bars, Rect{
				X: x0, Y: y + 4, W: w, H: LaneHeight - 8,
				InFlight: bar.End.IsZero(), Got: bar.Got > 0, Failed: bar.Failed,
			})
		}
		// Messages of one answer arrive at the same instant: their dots
		// are stacked up and down the lane so that each one shows.
		var last time.Time
		k := 0
		for _, d := range c.Dots {
			if d.At.Before(from) {
				continue
			}
			if d.At.Equal(last) {
				k++
			} else {
				last, k = d.At, 0
			}
			lane.Dots = append(lane.Dots, Circle{CX: x(d.At), CY: y + LaneHeight/2 + stack[k%len(stack)], R: DotRadius})
		}
		tl.Lanes = append(tl.Lanes, lane)
		y += LaneHeight + LaneGap
	}
	for ago := int(Window / time.Second); ago >= 0; ago -= 10 {
		tl.Ticks = append(tl.Ticks, Tick{X: x(now.Add(-time.Duration(ago) * time.Second)), Ago: ago})
	}
	tl.Height = y - LaneGap + AxisHeight
	return tl
}
