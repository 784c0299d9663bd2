// Command killtest starts a system from a scenario file, injects faults (signals at the worst
// moment), and proves with evidence that no process, fd, memory or port was left behind and no
// task was lost or duplicated. See docs/killtest.md.
package main

import (
	"os"

	"github.com/proxyline/proxyline/internal/killtest/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
}
