package console_test

import (
	"strings"
	"testing"

	"github.com/proxyline/proxyline/internal/console"
	"github.com/proxyline/proxyline/internal/lifecycle/lifecycletest"
	"github.com/proxyline/proxyline/internal/queue"
	"github.com/proxyline/proxyline/internal/testdb"
)

// TestLifecycle: the console's lifecycle (docs/lifecycle.md) over a real SQLite file. Serving:
// River UI and its API answer after the Start context ended. Nothing to drain: no cut test.
func TestLifecycle(t *testing.T) {
	t.Parallel()
	lifecycletest.Run(t, lifecycletest.Subject[*console.Console]{
		New: func(t *testing.T) *console.Console {
			c, err := console.New(console.Config{Store: testdb.Open(t, queue.EngineSQLite)})
			if err != nil {
				t.Fatal(err)
			}
			return c
		},
		Serving: func(t *testing.T, c *console.Console) {
			if code, body := status(c.Handler(), "GET", "/riverui/"); code != 200 || !strings.Contains(body, "<html") {
				t.Errorf("River UI after Start: %d %.200q", code, body)
			}
			if code, _ := status(c.Handler(), "GET", "/riverui/api/jobs?state=available&limit=5"); code != 200 {
				t.Errorf("River UI's API after Start: %d", code)
			}
		},
	})
}
