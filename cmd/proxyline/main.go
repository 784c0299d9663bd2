// Command proxyline checks proxies, spreads the work over a durable job queue and worker
// processes that never leave a process behind, and keeps a pool with history. See the README and
// docs/ for the commands.
package main

import (
	"os"

	"github.com/proxyline/proxyline/internal/cli"
	"github.com/proxyline/proxyline/internal/supervise"
)

func main() {
	// Re-executed as a task's PID 1 (internal/supervise): run the tiny init, nothing else.
	if code, ok := supervise.MaybeInit(); ok {
		os.Exit(code)
	}
	os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
