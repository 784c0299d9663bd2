package check

import (
	"testing"

	"github.com/proxyline/proxyline/internal/testkit"
)

// TestMain fails the package when a test leaks a goroutine or a file descriptor: every check
// must close its connection on every path.
func TestMain(m *testing.M) { testkit.Main(m) }
