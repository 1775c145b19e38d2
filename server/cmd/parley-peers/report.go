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

func buildReport(m machineInfo, runs []*result, took time.Duration) *report {
	rep := &report{Machine: m, Runs: runs, TotalSeconds: math.Round(took.Seconds()*10) / 10}
	var ns []int
	byPeer := map[string]map[int]*result{"Parley": {}, "Nchan": {}}
	for _, r := range runs {
		if !slices.Contains(ns, r.Clients) {
			ns = append(ns, r.Clients)
		}
		byPeer[r.Peer][r.Clients] = r
	}
	figure := func(name, unit, target string, ratio float64, get func(*result) (float64, bool)) {
		for i, n := range ns {
			rw := row{Figure: name, N: n, Unit: unit, Target: target, allowedRatio: ratio, first: i == 0}
			rw.Parley, rw.Nchan = math.NaN(), math.NaN()
			if r := byPeer["Parley"][n]; r != nil {
				if v, ok := get(r); ok {
					rw.Parley = v
				}
			}
			if r := byPeer["Nchan"][n]; r != nil {
				if v, ok := get(r); ok {
					rw.Nchan = v
				}
			}
			rep.Rows = append(rep.Rows, rw.judge())
		}
	}
	figure(figTime, "ms", "≤ 0.8 × Nchan", 0.8, func(r *result) (float64, bool) {
		return r.TimeToAllMedian, len(r.TimeToAllMS) > 0 && r.TimeToAllMedian > 0
	})
	figure(figTime9, "ms", "", 0, func(r *result) (float64, bool) { return r.TimeToAllP90, r.TimeToAllP90 > 0 })
	figure(figCPU, "µs", "≤ Nchan", 1, func(r *result) (float64, bool) { return r.CPUPerDeliveryU, r.Deliveries > 0 })
	figure(figRSS, "KB", "≤ Nchan", 1, func(r *result) (float64, bool) { return r.RSSPerWaiterKB, true })
	for _, n := range ns {
		p, c := byPeer["Parley"][n], byPeer["Nchan"][n]
		if (p == nil || p.Burst == nil) && (c == nil || c.Burst == nil) {
			continue
		}
		rw := row{Figure: strings.Replace(figBurst, "1,000", thousands(n), 1), Unit: "/s", Target: "≥ 1.5 × Nchan, 0 lost",
			allowedRatio: 1.5, higherBetter: true, parleyNoLoss: true, first: true, Parley: math.NaN(), Nchan: math.NaN()}
		if p != nil && p.Burst != nil {
			rw.Parley, rw.parleyExtra, rw.parleyLostAny = p.Burst.PerSecond, lostText(p.Burst), p.Burst.Lost > 0
		}
		if c != nil && c.Burst != nil {
			rw.Nchan, rw.nchanExtra = c.Burst.PerSecond, lostText(c.Burst)
		}
		rep.Rows = append(rep.Rows, rw.judge())
	}
	return rep
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

func lostText(b *burstResult) string {
	if b.Lost == 0 {
		return ", 0 lost"
	}
	return fmt.Sprintf(", %s %% lost", trim(b.LostPercent, 1))
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
	fmt.Fprintf(w, "\nServer CPU and RSS count every server process (nginx: master and workers). Time to all runs from the start of the send to the last client's receipt. Total run time %s.\n",
		time.Duration(rep.TotalSeconds*float64(time.Second)).Round(time.Second))
	fmt.Fprintln(w, "\nCPU seconds during each paced phase, to judge the noise (the machine is shared):")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| peer | N | phase s | server | load tool | other processes |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|")
	for _, r := range rep.Runs {
		fmt.Fprintf(w, "| %s | %s | %.1f | %.2f | %.2f | %.2f |\n", r.Peer, thousands(r.Clients), r.PhaseSeconds,
			float64(r.ServerTicks)/ticksPerSecond, r.ClientCPUSeconds, r.OtherCPUSeconds)
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
