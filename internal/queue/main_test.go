package queue_test

import (
	"testing"

	"github.com/proxyline/proxyline/internal/testdb"
	"github.com/proxyline/proxyline/internal/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }

// proxylineBinary is the proxyline program the process tests run, built once (with -race when
// the tests run with it).
func proxylineBinary(t testing.TB) string { return testkit.BuildBinary(t, "./cmd/proxyline") }

// fakeCheckerBinary is internal/check/external's stand-in for mubeng, for the exec backend.
func fakeCheckerBinary(t testing.TB) string {
	return testkit.BuildBinary(t, "./internal/check/external/testdata/fakechecker", testkit.NoRace())
}

// engines are the databases every store test runs on.
var engines = []string{"sqlite", "postgres"}

// database returns a fresh database of the engine for t, dropped when t ends (internal/testdb).
func database(t testing.TB, engine string) string {
	return testdb.Database(t, engine)
}
