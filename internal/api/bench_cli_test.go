package api_test

import (
	"bytes"
	"io"
	"testing"

	"github.com/proxyline/proxyline/internal/cli"
)

// countingWriter counts the bytes and lines written to it and keeps none of them.
type countingWriter struct{ bytes, lines int64 }

func (w *countingWriter) Write(p []byte) (int, error) {
	w.bytes += int64(len(p))
	w.lines += int64(bytes.Count(p, []byte{'\n'}))
	return len(p), nil
}

// benchCLI times proxyline status and export as a user runs them: the command's whole run
// (open the database read-only, read, format, write to stdout), through cli.Main.
func benchCLI(b *testing.B, db string) {
	run := func(name string, args ...string) {
		b.Run(name, func(b *testing.B) {
			var out countingWriter
			for b.Loop() {
				out = countingWriter{}
				var stderr bytes.Buffer
				if code := cli.Main(append(args, "--database", db), nil, &out, &stderr); code != 0 {
					b.Fatalf("proxyline %v: exit %d: %s", args, code, stderr.String())
				}
			}
			if out.lines == 0 {
				b.Fatalf("proxyline %v wrote nothing", args)
			}
			b.ReportMetric(float64(out.lines), "lines")
		})
	}
	run("cli_status", "status")
	run("cli_status_json", "status", "--json")
	run("cli_export", "export")
	run("cli_export_sources", "export", "--sources")
	run("cli_export_all_csv", "export", "--all", "--format", "csv")
}

var _ io.Writer = (*countingWriter)(nil)
