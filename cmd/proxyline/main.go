// Command proxyline scrapes free proxy lists, checks proxies, keeps a pool with history and serves
// it as a rotating proxy. See the README and docs/ for the commands.
package main

import (
	"os"

	"github.com/proxyline/proxyline/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
