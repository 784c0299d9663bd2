package queue_test

import (
	"flag"
	"io"
	"strings"
	"testing"

	"github.com/proxyline/proxyline/internal/queue"
)

func TestDatabaseFlag(t *testing.T) {
	t.Parallel()
	var d queue.DatabaseFlag
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	d.Register(fs)
	if err := fs.Parse(nil); err != nil || d.Database != queue.DefaultDatabase || d.Validate() != nil {
		t.Fatalf("default: %q, %v, %v", d.Database, err, d.Validate())
	}
	for in, want := range map[string]string{
		"postgres://u:secret@127.0.0.1/test": "",
		"/tmp/q.db":                          "",
		"mysql://127.0.0.1/x":                "--database: database",
		"host=db password=secret":            "key=value connection string",
		"q.db?mode=ro":                       "plain SQLite file path",
	} {
		if err := fs.Parse([]string{"--database", in}); err != nil {
			t.Fatal(err)
		}
		err := d.Validate()
		if want == "" && err != nil || want != "" && (err == nil || !strings.Contains(err.Error(), want)) {
			t.Errorf("--database %q: %v, want %q", in, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("--database %q: the password in the error: %v", in, err)
		}
	}
	c := d.Config(queue.ReadOnly, nil)
	if c.Database != d.Database || c.Access != queue.ReadOnly {
		t.Errorf("Config = %+v", c)
	}
}
