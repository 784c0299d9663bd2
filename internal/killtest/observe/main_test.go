package observe

import (
	"fmt"
	"os"
	"syscall"
	"testing"

	"go.uber.org/goleak"

	"github.com/proxyline/proxyline/internal/proctab"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if left := leftovers(); len(left) > 0 {
		fmt.Fprintf(os.Stderr, "FAIL: processes with the test cookie %s left behind (killed now): %v\n", testCookie, left)
		code = 1
	}
	if err := goleak.Find(); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: goroutines leaked: %v\n", err)
		code = 1
	}
	os.Exit(code)
}

// leftovers finds the processes carrying this test binary's cookie, kills them (after checking
// their identity) and returns their command lines: a test left them behind.
func leftovers() []string {
	procs, err := proctab.WithEnv(testCookie)
	if err != nil {
		return []string{err.Error()}
	}
	var out []string
	for _, p := range procs {
		args, _ := proctab.Cmdline(p.PID)
		out = append(out, fmt.Sprintf("pid %d %q (ppid %d)", p.PID, args, p.PPID))
		if again, err := proctab.Stat(p.PID); err == nil && again.StartTime == p.StartTime {
			_ = syscall.Kill(p.PID, syscall.SIGKILL)
		}
	}
	return out
}
