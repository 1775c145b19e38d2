package ui

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// fakeTimers stands in for the browser's timers: the gap between turns
// fires at once, and the test fires renderWait itself.
type fakeTimers struct {
	mu   sync.Mutex
	late []chan struct{}
}

func (f *fakeTimers) after(d time.Duration) (<-chan struct{}, func()) {
	ch := make(chan struct{})
	if d == 0 {
		close(ch)
		return ch, func() {}
	}
	f.mu.Lock()
	f.late = append(f.late, ch)
	f.mu.Unlock()
	return ch, func() {}
}

// armed waits until Render armed its renderWait timer: it holds a turn.
func (f *fakeTimers) armed(t *testing.T) {
	t.Helper()
	require.Eventually(t, func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return len(f.late) > 0
	}, 5*time.Second, time.Millisecond)
}

// fireLate fires the renderWait timer Render armed.
func (f *fakeTimers) fireLate(t *testing.T) {
	t.Helper()
	f.armed(t)
	f.mu.Lock()
	close(f.late[0])
	f.late = f.late[1:]
	f.mu.Unlock()
}

func startTestPacer(t *testing.T) (*pacer, *fakeTimers) {
	t.Helper()
	before := goleak.IgnoreCurrent()
	ctx, cancel := context.WithCancel(context.Background())
	f := &fakeTimers{}
	p := startPacer(ctx, f.after)
	t.Cleanup(func() {
		cancel()
		// The pacer's goroutine ends with its context.
		goleak.VerifyNone(t, before)
	})
	return p, f
}

// returns reports whether f returns within d.
func returns(f func(), d time.Duration) bool {
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}

func TestPacerTurnsAreExclusive(t *testing.T) {
	p, _ := startTestPacer(t)
	end := p.Begin()
	require.False(t, returns(p.Wait, 50*time.Millisecond), "a second turn while the first lasts")
	end()
	require.True(t, returns(p.Wait, time.Second))
}

func TestPacerRenderEndsWhenDrawn(t *testing.T) {
	p, _ := startTestPacer(t)
	// Drawn at once: the turn ends without waiting for renderWait, which
	// the fake never fires here.
	require.True(t, returns(func() { p.Render(func(rendered func()) { rendered() }, nil) }, time.Second))
	require.True(t, returns(p.Wait, time.Second))
}

// A frame that never comes (a dispatch go-app dropped, a ticker the wasm
// runtime did not run) ends the turn at renderWait: the steps behind it,
// the leader tab's poll among them, go on.
func TestPacerRenderWithoutFrameEndsAtRenderWait(t *testing.T) {
	p, timers := startTestPacer(t)
	rendered := make(chan struct{})
	go func() {
		defer close(rendered)
		p.Render(func(func()) {}, nil)
	}()
	timers.armed(t)
	waited := make(chan struct{})
	go func() {
		defer close(waited)
		p.Wait()
	}()
	select {
	case <-waited:
		t.Fatal("the next step ran while a render held its turn")
	case <-time.After(50 * time.Millisecond):
	}
	timers.fireLate(t)
	for _, ch := range []chan struct{}{rendered, waited} {
		select {
		case <-ch:
		case <-time.After(5 * time.Second):
			t.Fatal("the render's turn did not end at renderWait")
		}
	}
}

func TestPacerRenderEndsWithDone(t *testing.T) {
	p, _ := startTestPacer(t)
	done := make(chan struct{})
	close(done)
	require.True(t, returns(func() { p.Render(func(func()) {}, done) }, time.Second))
	require.True(t, returns(p.Wait, time.Second))
}

func TestPacerStoppedHandsOutNoTurns(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	before := goleak.IgnoreCurrent()
	f := &fakeTimers{}
	p := startPacer(ctx, f.after)
	end := p.Begin()
	cancel()
	// Ending a turn and asking for the next return at once once stopped:
	// the page is going away and must not wait.
	require.True(t, returns(end, time.Second))
	require.True(t, returns(p.Wait, time.Second))
	require.True(t, returns(func() { p.Render(func(func()) {}, nil) }, time.Second))
	goleak.VerifyNone(t, before)
}

func TestNilPacerRendersInline(t *testing.T) {
	var p *pacer
	drawn := false
	p.Render(func(rendered func()) { drawn = true }, nil)
	require.True(t, drawn)
	p.Wait()
}
