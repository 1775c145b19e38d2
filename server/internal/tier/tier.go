// Package tier sorts the tests in two tiers. `go test ./...` runs the quick
// one, which needs nothing but Go. The integration tier (PARLEY_INTEGRATION=1,
// which `make test` always sets, after installing what it needs) adds the
// tests that run real programs: redis-server, nginx, the parley binary as a
// subprocess. With the tier on, those tests never skip: a missing program
// fails them, saying what to install.
package tier

import (
	"os"
	"testing"
)

// Env is the variable that turns the integration tier on.
const Env = "PARLEY_INTEGRATION"

// On reports whether the integration tier is on.
func On() bool { return os.Getenv(Env) == "1" }

// Require skips t unless the integration tier is on; needs says what the
// test runs, for the skip message.
func Require(t testing.TB, needs string) {
	t.Helper()
	if !On() {
		t.Skipf("integration tier: needs %s; run with %s=1 (make test does)", needs, Env)
	}
}
