// Command proxyline scrapes free proxy lists, checks proxies, keeps a pool with history and serves
// it as a rotating proxy. See the README and docs/ for the commands.
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
