package check

import (
	"flag"
	"fmt"
	"net"
	"os"
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a test leaks a goroutine or a file descriptor: every check
// must close its connection on every path.
func TestMain(m *testing.M) {
	warmUp()
	before, err := openFDs()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goroutine leak: %v\n", err)
			code = 1
		}
	}
	if code == 0 && !profiling() {
		after, err := openFDs()
		if err != nil || after != before {
			fmt.Fprintf(os.Stderr, "file descriptors: %d before the tests, %d after (%v)\n", before, after, err)
			code = 1
		}
	}
	os.Exit(code)
}

// profiling reports whether a -test.*profile flag is set: the profile file stays open until the
// process exits, so the fd count is not comparable then.
func profiling() bool {
	for _, name := range []string{"test.cpuprofile", "test.memprofile", "test.blockprofile", "test.mutexprofile", "test.trace"} {
		if f := flag.Lookup(name); f != nil && f.Value.String() != "" {
			return true
		}
	}
	return false
}

// warmUp makes the runtime open its lazily created descriptors (the network poller) before the
// baseline is taken.
func warmUp() {
	if ln, err := net.Listen("tcp", "127.0.0.1:0"); err == nil {
		ln.Close()
	}
}

// openFDs counts this process's open file descriptors.
func openFDs() (int, error) {
	es, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0, fmt.Errorf("count fds: %w", err)
	}
	return len(es) - 1, nil // minus the directory ReadDir itself had open
}
