package main

import (
	"fmt"
	"io"
	"time"
)

// result is a run's tally, printed as a report or as one table row.
type result struct {
	cfg                                  config
	committed                            int64
	sendSecs, offered, deliverSecs       float64
	send, delivery                       *hist
	throttled                            int64
	polls, empty                         int
	receipts                             int64
	heldMax                              int64
	heldMean                             float64
	lost, dups, gaps, resets, mismatched int
	errors                               int
	capped                               bool
	catchUp                              time.Duration
}

func (r result) rate() float64 {
	if r.sendSecs <= 0 {
		return 0
	}
	return float64(r.committed) / r.sendSecs
}

func (r result) report(w io.Writer) {
	c := r.cfg
	fmt.Fprintf(w, "target      %s: %d room(s) × %d pollers, %d senders × %d messages at %.1f/s each\n",
		c.url, c.rooms, c.pollers, c.senders, c.messages, c.rate)
	fmt.Fprintf(w, "committed   %d messages in %.2fs: %.0f msg/s (offered %.0f msg/s; %d throttled with 429)\n",
		r.committed, r.sendSecs, r.rate(), r.offered, r.throttled)
	fmt.Fprintf(w, "send        p50/p95/p99 %s (max %s)\n", r.send, ms(r.send.max))
	fmt.Fprintf(w, "delivery    p50/p95/p99 %s (max %s) over %d receipts, %.0f/s; last poller done %s after the last send\n",
		r.delivery, ms(r.delivery.max), r.delivery.n, float64(r.receipts)/r.deliverSecs, ms(r.catchUp))
	fmt.Fprintf(w, "polls       %d answered (%d empty); held at once: max %d, mean %.0f\n", r.polls, r.empty, r.heldMax, r.heldMean)
	fmt.Fprintf(w, "correctness %d lost, %d duplicates, %d gaps, %d resets, %d pollers with a different set; %d failed requests\n",
		r.lost, r.dups, r.gaps, r.resets, r.mismatched, r.errors)
}

// row prints one Markdown table row; bench.sh prints the header.
func (r result) row(w io.Writer) {
	c := r.cfg
	verdict := "ok"
	if r.lost+r.dups+r.gaps+r.resets+r.mismatched+r.errors > 0 || r.capped {
		verdict = fmt.Sprintf("FAIL %d lost %d dup %d err", r.lost, r.dups, r.errors)
	}
	fmt.Fprintf(w, "| %s | %d × %d | %d × %d @ %.0f/s | %d | %.0f | %s | %s | %.0f | %d | %s |\n",
		c.label, c.rooms, c.pollers, c.senders, c.messages, c.rate, r.committed, r.rate(),
		r.send, r.delivery, float64(r.receipts)/r.deliverSecs, r.heldMax, verdict)
}
