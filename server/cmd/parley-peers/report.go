package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// MarshalJSON writes a missing figure (NaN) as null.
func (rw row) MarshalJSON() ([]byte, error) {
	type plain row
	num := func(v float64) *float64 {
		if math.IsNaN(v) {
			return nil
		}
		return &v
	}
	return json.Marshal(struct {
		plain
		Parley *float64 `json:"parley"`
		Nchan  *float64 `json:"nchan"`
		Ratio  *float64 `json:"ratio"`
	}{plain(rw), num(rw.Parley), num(rw.Nchan), num(rw.Ratio)})
}

// report is everything a run prints: the machine, each peer's raw figures
// and the comparison against issue 7's targets.
type report struct {
	Machine      machineInfo `json:"machine"`
	Runs         []*result   `json:"runs"`
	Rows         []row       `json:"rows"`
	TotalSeconds float64     `json:"total_seconds"`
}

// row is one line of the table. Parley and Nchan are NaN when missing;
// Ratio is Parley/Nchan.
type row struct {
	Figure string  `json:"figure"`
	N      int     `json:"n"`
	Unit   string  `json:"unit"`
	Parley float64 `json:"-"`
	Nchan  float64 `json:"-"`
	Ratio  float64 `json:"-"`
	Target string  `json:"target"`
	// Met is nil when the row has no target or a figure is missing.
	Met *bool `json:"met"`

	parleyExtra   string // appended to the printed figure
	nchanExtra    string
	first         bool // the first row of its figure prints the figure's name
	allowedRatio  float64
	higherBetter  bool
	parleyNoLoss  bool // the target also needs Parley to lose nothing
	parleyLostAny bool
}

// The figures, their units and their targets, as issue 7 states them.
const (
	figTime  = "time until all N have a message, median"
	figTime9 = "time until all N have a message, p90"
	figCPU   = "server CPU per delivery"
	figRSS   = "RSS per waiting client"
	figBurst = "deliveries/s, N=1,000, back-to-back sends"
)

// buildReport compares the peers. With several rounds, each figure is the
// median of the rounds' figures (a run where it is missing left out), which
// keeps one round disturbed by other work on the machine from deciding it.
func buildReport(m machineInfo, runs []*result, took time.Duration) *report {
	rep := &report{Machine: m, Runs: runs, TotalSeconds: math.Round(took.Seconds()*10) / 10}
	var ns []int
	byPeer := map[string]map[int][]*result{"Parley": {}, "Nchan": {}}
	for _, r := range runs {
		if !slices.Contains(ns, r.Clients) {
			ns = append(ns, r.Clients)
		}
		byPeer[r.Peer][r.Clients] = append(byPeer[r.Peer][r.Clients], r)
	}
	// pick is the median of get over runs, NaN when no run has it.
	pick := func(runs []*result, get func(*result) (float64, bool)) float64 {
		var xs []float64
		for _, r := range runs {
			if v, ok := get(r); ok {
				xs = append(xs, v)
			}
		}
		if len(xs) == 0 {
			return math.NaN()
		}
		return median(xs)
	}
	figure := func(name, unit, target string, ratio float64, get func(*result) (float64, bool)) {
		for i, n := range ns {
			rw := row{Figure: name, N: n, Unit: unit, Target: target, allowedRatio: ratio, first: i == 0,
				Parley: pick(byPeer["Parley"][n], get), Nchan: pick(byPeer["Nchan"][n], get)}
			rep.Rows = append(rep.Rows, rw.judge())
		}
	}
	figure(figTime, "ms", "≤ 0.8 × Nchan", 0.8, func(r *result) (float64, bool) {
		return r.TimeToAllMedian, len(r.TimeToAllMS) > 0 && r.TimeToAllMedian > 0
	})
	figure(figTime9, "ms", "", 0, func(r *result) (float64, bool) { return r.TimeToAllP90, r.TimeToAllP90 > 0 })
	figure(figCPU, "µs", "≤ Nchan", 1, func(r *result) (float64, bool) { return r.CPUPerDeliveryU, r.Deliveries > 0 })
	figure(figRSS, "KB", "≤ Nchan", 1, func(r *result) (float64, bool) { return r.RSSPerWaiterKB, true })
	rate := func(r *result) (float64, bool) {
		if r.Burst == nil {
			return 0, false
		}
		return r.Burst.PerSecond, true
	}
	lostPct := func(r *result) (float64, bool) {
		if r.Burst == nil {
			return 0, false
		}
		return r.Burst.LostPercent, true
	}
	for _, n := range ns {
		p, c := byPeer["Parley"][n], byPeer["Nchan"][n]
		rw := row{Figure: strings.Replace(figBurst, "1,000", thousands(n), 1), Unit: "/s", Target: "≥ 1.5 × Nchan, 0 lost",
			allowedRatio: 1.5, higherBetter: true, parleyNoLoss: true, first: true, Parley: pick(p, rate), Nchan: pick(c, rate)}
		if math.IsNaN(rw.Parley) && math.IsNaN(rw.Nchan) {
			continue
		}
		if !math.IsNaN(rw.Parley) {
			rw.parleyExtra = lostText(pick(p, lostPct))
			for _, r := range p {
				rw.parleyLostAny = rw.parleyLostAny || (r.Burst != nil && r.Burst.Lost > 0)
			}
		}
		if !math.IsNaN(rw.Nchan) {
			rw.nchanExtra = lostText(pick(c, lostPct))
		}
		rep.Rows = append(rep.Rows, rw.judge())
	}
	return rep
}

// median is the middle of xs (the mean of the two middle ones for an even
// count); it sorts xs.
func median(xs []float64) float64 {
	slices.Sort(xs)
	n := len(xs)
	if n%2 == 1 {
		return xs[n/2]
	}
	return (xs[n/2-1] + xs[n/2]) / 2
}

// judge fills the ratio and whether the target is met.
func (rw row) judge() row {
	rw.Ratio = math.NaN()
	if !math.IsNaN(rw.Parley) && !math.IsNaN(rw.Nchan) && rw.Nchan > 0 {
		rw.Ratio = rw.Parley / rw.Nchan
	}
	if rw.allowedRatio > 0 && !math.IsNaN(rw.Ratio) {
		met := rw.Ratio <= rw.allowedRatio
		if rw.higherBetter {
			met = rw.Ratio >= rw.allowedRatio
		}
		if rw.parleyNoLoss && rw.parleyLostAny {
			met = false
		}
		rw.Met = &met
	}
	return rw
}

// lostText follows a deliveries/s figure with the share of deliveries lost.
func lostText(pct float64) string {
	if pct == 0 {
		return ", 0 lost"
	}
	return fmt.Sprintf(", %s %% lost", trim(pct, 1))
}

// table prints issue 7's table with the ratio and verdict columns.
func (rep *report) table(w io.Writer) {
	fmt.Fprintln(w, "| figure | N | Parley | Nchan | ratio Parley/Nchan | target | met? |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|")
	for _, rw := range rep.Rows {
		name, n := "", thousands(rw.N)
		if rw.first {
			name = rw.Figure
		}
		if rw.Unit == "/s" {
			n = ""
		}
		target, met := rw.Target, "—"
		if target == "" {
			target = "—"
		}
		if rw.Met != nil {
			met = map[bool]string{true: "met", false: "not met"}[*rw.Met]
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s |\n", name, n,
			formatValue(rw.Parley, rw.Unit)+rw.parleyExtra, formatValue(rw.Nchan, rw.Unit)+rw.nchanExtra,
			formatRatio(rw.Ratio), target, met)
	}
	fmt.Fprintf(w, "\nServer CPU and RSS count every server process (nginx: master and workers). Time to all runs from the time a message was due to be sent to the last client's receipt, so a server that answers sends late is charged for it. Total run time %s.\n",
		time.Duration(rep.TotalSeconds*float64(time.Second)).Round(time.Second))
	fmt.Fprintln(w, "\nEach run's paced phase, in the order run, with the CPU seconds it took, to judge the noise (the machine is shared):")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| round | peer | N | phase s | server | of which kernel | load tool | other processes | latest send behind schedule | time to all, median |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range rep.Runs {
		fmt.Fprintf(w, "| %d | %s | %s | %.1f | %.2f | %.2f | %.2f | %.2f | %s | %s |\n", r.Round, r.Peer, thousands(r.Clients), r.PhaseSeconds,
			float64(r.ServerTicks)/ticksPerSecond, float64(r.ServerSysTicks)/ticksPerSecond, r.ClientCPUSeconds, r.OtherCPUSeconds, formatValue(r.SendLagMaxMS, "ms"), formatValue(r.TimeToAllMedian, "ms"))
	}
}

// formatValue prints a figure the way issue 7 does: "44 ms", "9.5 ms",
// "62 µs", "28.6 KB", "31,500".
func formatValue(v float64, unit string) string {
	if math.IsNaN(v) {
		return "—"
	}
	switch unit {
	case "ms", "µs":
		if v < 10 {
			return trim(v, 1) + " " + unit
		}
		return thousands(int(math.Round(v))) + " " + unit
	case "KB":
		return trim(v, 1) + " KB"
	case "/s":
		// Three significant figures are all a noisy machine supports.
		return thousands(int(roundSig(v, 3)))
	}
	return trim(v, 2)
}

func formatRatio(r float64) string {
	if math.IsNaN(r) {
		return "—"
	}
	return strconv.FormatFloat(r, 'f', 2, 64)
}

// trim formats v with at most prec decimals.
func trim(v float64, prec int) string {
	return strconv.FormatFloat(v, 'f', prec, 64)
}

func roundSig(v float64, sig int) float64 {
	if v == 0 {
		return 0
	}
	p := math.Pow(10, float64(sig)-math.Ceil(math.Log10(math.Abs(v))))
	return math.Round(v*p) / p
}

// thousands prints n with commas: 10000 → "10,000".
func thousands(n int) string {
	s := strconv.Itoa(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
