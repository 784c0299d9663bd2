package observe

import (
	"testing"

	"github.com/proxyline/proxyline/internal/testkit"
)

// TestMain checks, after the tests, that no goroutine, descriptor or child process is left, and
// no process with the test cookie wherever it was re-parented to.
func TestMain(m *testing.M) { testkit.Main(m, testkit.Cookie(testCookie)) }
