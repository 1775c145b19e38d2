package loadkit

import "strings"

// ListenAddr extracts HOST:PORT from the line bin/parley logs once it
// listens (`msg="parley listening" addr=…`), which is how the tools and
// tests that start it with -addr 127.0.0.1:0 learn its port.
func ListenAddr(line string) (string, bool) {
	if !strings.Contains(line, `msg="parley listening"`) {
		return "", false
	}
	for f := range strings.FieldsSeq(line) {
		if a, ok := strings.CutPrefix(f, "addr="); ok {
			return a, true
		}
	}
	return "", false
}
