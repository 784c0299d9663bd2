package queue

import (
	"flag"
	"fmt"
	"log/slog"
)

// DatabaseFlag is --database, the same on every command that uses the queue (enqueue, worker,
// status, export, ui, scrape --enqueue): one flag definition, one validation. A command's
// options hold one.
type DatabaseFlag struct {
	// Database is a SQLite file or a postgres:// URL (Config.Database). Default DefaultDatabase.
	Database string
}

// Register defines --database on fs.
func (d *DatabaseFlag) Register(fs *flag.FlagSet) {
	fs.StringVar(&d.Database, "database", DefaultDatabase, "SQLite `file` or postgres:// URL of the queue (a password is better in PROXYLINE_DATABASE than on the command line)")
}

// Validate checks the database string's form, naming the flag.
func (d DatabaseFlag) Validate() error {
	if err := (Config{Database: d.Database}).Validate(); err != nil {
		return fmt.Errorf("--database: %w", err)
	}
	return nil
}

// Config is the Config that opens the database with access.
func (d DatabaseFlag) Config(access Access, log *slog.Logger) Config {
	return Config{Database: d.Database, Access: access, Logger: log}
}
