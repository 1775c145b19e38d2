package main

import (
	"fmt"
	"math"
	"time"
)

// hist counts durations in buckets 2% wide from 1µs up, so quantiles are
// exact to 2% whatever the number of samples, in constant memory.
type hist struct {
	counts [1200]uint64
	n      uint64
	max    time.Duration
}

const histBase = 1.02

func (h *hist) add(d time.Duration) {
	i := 0
	if d > time.Microsecond {
		i = min(len(h.counts)-1, 1+int(math.Log(float64(d)/float64(time.Microsecond))/math.Log(histBase)))
	}
	h.counts[i]++
	h.n++
	h.max = max(h.max, d)
}

func (h *hist) merge(o *hist) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.max = max(h.max, o.max)
}

// quantile returns the upper edge of the bucket holding the q-th sample.
func (h *hist) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= max(rank, 1) {
			if i == 0 {
				return time.Microsecond
			}
			return min(h.max, time.Duration(float64(time.Microsecond)*math.Pow(histBase, float64(i))))
		}
	}
	return h.max
}

func (h *hist) String() string {
	return fmt.Sprintf("%s / %s / %s", ms(h.quantile(0.50)), ms(h.quantile(0.95)), ms(h.quantile(0.99)))
}

func ms(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d >= 10*time.Millisecond:
		return fmt.Sprintf("%.0fms", float64(d)/1e6)
	default:
		return fmt.Sprintf("%.2fms", float64(d)/1e6)
	}
}
