package detect

import (
	"bufio"
	"fmt"
	"math"
	"net"
	"os"
	"runtime"
	"runtime/debug"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/proxyline/proxyline/internal/testkit"
)

// fixtureEnv selects a fixture mode: the test binary re-executes itself as a misbehaving (or
// well-behaved) system under test.
const fixtureEnv = "DETECT_FIXTURE"

func TestMain(m *testing.M) {
	if mode := os.Getenv(fixtureEnv); mode != "" {
		os.Exit(runFixture(mode))
	}
	// The process that started the tests may have left fds without close-on-exec (seen: a
	// pipe at fd 251); they would leak into every process the tests start and blur the
	// inheritance checks. A harness should do the same at start-up.
	if err := unix.CloseRange(3, math.MaxUint32, unix.CLOSE_RANGE_CLOEXEC); err != nil {
		fmt.Fprintln(os.Stderr, "close_range:", err)
	}
	testkit.Main(m, testkit.Cookie(testCookie))
}

// runFixture runs one cycle per line read on stdin and answers "ok" after each; it exits at
// EOF, so a fixture never outlives its test.
//
//	fdleak     opens a pipe per cycle and keeps it
//	fdsteady   opens a pipe per cycle and closes it
//	memgrow    allocates and keeps 8 MiB per cycle
//	memsteady  allocates 8 MiB per cycle and drops it
//	listen     listens on 127.0.0.1:0, prints the port first
func runFixture(mode string) int {
	var keep []any
	if mode == "listen" {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer ln.Close()
		fmt.Println(ln.Addr().(*net.TCPAddr).Port)
	}
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		switch mode {
		case "fdleak", "fdsteady":
			r, w, err := os.Pipe()
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			if mode == "fdleak" {
				keep = append(keep, r, w)
			} else {
				r.Close()
				w.Close()
			}
		case "memgrow", "memsteady":
			b := make([]byte, 8<<20)
			for i := 0; i < len(b); i += 4096 {
				b[i] = 1
			}
			if mode == "memgrow" {
				keep = append(keep, b)
			}
			runtime.GC()
			debug.FreeOSMemory()
		}
		fmt.Println("ok")
	}
	runtime.KeepAlive(keep)
	return 0
}
