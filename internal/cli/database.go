package cli

import (
	"flag"

	"github.com/proxyline/proxyline/internal/queue"
)

// databaseFlag defines --database, the same on every command that uses the queue.
func databaseFlag(fs *flag.FlagSet, p *string) {
	fs.StringVar(p, "database", queue.DefaultDatabase, "SQLite file or postgres:// URL of the queue")
}
