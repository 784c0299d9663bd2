package demo

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/proxyline/proxyline/internal/supervise"
)

// The whole demo (lab, queue, worker processes, drain, judgement) runs in internal/cli's
// TestDemo: its worker processes are proxyline itself, which only the command line can be.

// TestOptionsValidate checks that each bad option is named by its flag.
func TestOptionsValidate(t *testing.T) {
	t.Parallel()
	good := Options{Workers: 2, Per: 10, Chunk: 10, Timeout: 3 * time.Second, Wait: time.Minute}
	if err := good.Validate(); err != nil {
		t.Fatalf("good options: %v", err)
	}
	for _, tc := range []struct {
		change func(*Options)
		want   string
	}{
		{func(o *Options) { o.Workers = 0 }, "--workers 0"},
		{func(o *Options) { o.Workers = 17 }, "--workers 17"},
		{func(o *Options) { o.Per = 1001 }, "--per-kind 1001"},
		{func(o *Options) { o.Chunk = 0 }, "--chunk 0"},
		{func(o *Options) { o.Timeout = 0 }, "-t and --wait"},
		{func(o *Options) { o.Wait = -time.Second }, "-t and --wait"},
	} {
		o := good
		tc.change(&o)
		if err := o.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate = %v, want an error naming %q", err, tc.want)
		}
	}
}

// TestWorkerEndFailure checks which ends of a worker's task are failures: a signal, a non-zero
// exit, an error other than the demo's own cancellation.
func TestWorkerEndFailure(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		end  workerEnd
		want string // "" for a clean end
	}{
		{workerEnd{n: 1}, ""},
		{workerEnd{n: 1, err: context.Canceled}, ""},
		{workerEnd{n: 2, res: supervise.Result{ExitCode: -1, Signaled: true, Signal: "killed"}}, "worker 2: killed by killed"},
		{workerEnd{n: 3, res: supervise.Result{ExitCode: 3}}, "worker 3: exit status 3"},
		{workerEnd{n: 4, err: errors.New("no such file")}, "worker 4: no such file"},
	} {
		err := tc.end.failure()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%+v: failure = %v, want none", tc.end, err)
		case tc.want != "" && (err == nil || err.Error() != tc.want):
			t.Errorf("%+v: failure = %v, want %q", tc.end, err, tc.want)
		}
	}
}
