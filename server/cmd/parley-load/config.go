package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/parley-chat/parley/shared"
)

// config is what the flags say.
type config struct {
	url      string
	rooms    int
	pollers  int // per room
	senders  int // in all, spread over the rooms
	messages int // per sender
	rate     float64
	duration time.Duration
	drain    time.Duration
	wait     int
	perIP    int
	label    string
	row      bool
	cpuprof  string
	lesson   string        // "", or the mode of a -lesson run
	interval time.Duration // short polling's, in a -lesson run
}

// Bounds that keep a run from becoming a denial of service against the
// machine it runs on.
const (
	maxRooms    = 1000
	maxPollers  = 20000 // in all
	maxSenders  = 5000
	maxMessages = 100000 // per sender
	maxDuration = 30 * time.Minute
)

func parseConfig(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("parley-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.url, "url", "http://127.0.0.1:8080", "Parley server to load (loopback only)")
	fs.IntVar(&c.rooms, "rooms", 1, "rooms to spread the load over")
	fs.IntVar(&c.pollers, "pollers", 100, "long-polling readers per room")
	fs.IntVar(&c.senders, "senders", 10, "sending sessions in all, assigned to rooms in turn")
	fs.IntVar(&c.messages, "messages", 100, "messages each sender sends")
	fs.Float64Var(&c.rate, "rate", 5, "messages per second per sender (the server allows 5/s per session after a burst of 20); 0 sends as fast as answered")
	fs.DurationVar(&c.duration, "duration", 2*time.Minute, "cap on the sending phase")
	fs.DurationVar(&c.drain, "drain", 30*time.Second, "how long pollers may take to receive everything once sending ends")
	fs.IntVar(&c.wait, "wait", shared.DefaultWaitSeconds, "poll wait in seconds")
	fs.IntVar(&c.perIP, "sessions-per-ip", 16, "sender sessions created from each loopback source address (the server allows a burst of 20 per address)")
	fs.StringVar(&c.label, "label", "", "name of this run in the -row output")
	fs.BoolVar(&c.row, "row", false, "print the result as one Markdown table row instead of a report")
	fs.StringVar(&c.cpuprof, "cpuprofile", "", "write this tool's own CPU profile to the file, to see what the load costs the client side")
	fs.StringVar(&c.lesson, "lesson", "", "run the /learn page's comparison instead: -pollers clients of this mode (short, long or textbook) read lobby while one sender posts -messages through /send_msg/ at -rate")
	fs.DurationVar(&c.interval, "interval", 2*time.Second, "short polling's interval in a -lesson short run")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	switch {
	case c.rooms < 1 || c.rooms > maxRooms:
		return c, fmt.Errorf("-rooms must be 1-%d", maxRooms)
	case c.pollers < 0 || c.pollers*c.rooms > maxPollers:
		return c, fmt.Errorf("-pollers × -rooms must be 0-%d", maxPollers)
	case c.senders < c.rooms || c.senders > maxSenders:
		return c, fmt.Errorf("-senders must be from -rooms (%d, one per room at least) to %d", c.rooms, maxSenders)
	case c.messages < 1 || c.messages > maxMessages:
		return c, fmt.Errorf("-messages must be 1-%d", maxMessages)
	case c.rate < 0:
		return c, errors.New("-rate must not be negative")
	case c.duration <= 0 || c.duration > maxDuration:
		return c, fmt.Errorf("-duration must be positive and at most %v", maxDuration)
	case c.drain <= 0 || c.drain > maxDuration:
		return c, fmt.Errorf("-drain must be positive and at most %v", maxDuration)
	case c.wait < 1 || c.wait > shared.MaxWaitSeconds:
		return c, fmt.Errorf("-wait must be 1-%d", shared.MaxWaitSeconds)
	case c.perIP < 1 || c.perIP > 20:
		return c, errors.New("-sessions-per-ip must be 1-20")
	case c.lesson != "" && c.lesson != "short" && c.lesson != "long" && c.lesson != "textbook":
		return c, errors.New("-lesson must be short, long or textbook")
	case c.lesson != "" && (c.rate <= 0 || c.interval < 100*time.Millisecond):
		return c, errors.New("-lesson needs a positive -rate and an -interval of 100ms or more")
	}
	return c, nil
}
