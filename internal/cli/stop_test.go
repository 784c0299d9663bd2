package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
)

// TestStopContext: the stop context keeps running after ctx ends, and the second signal cuts it
// with errForced.
func TestStopContext(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the first signal
	force := make(chan struct{})
	sctx, done := stopContext(ctx, &Env{Force: force})
	defer done()
	if sctx.Err() != nil {
		t.Fatalf("stop context ended with the command's: %v", sctx.Err())
	}
	close(force) // the second signal
	<-sctx.Done()
	if !errors.Is(context.Cause(sctx), errForced) {
		t.Errorf("cause = %v, want errForced", context.Cause(sctx))
	}
}

// TestWithoutForced: only the parts that say the second signal cut the stop are dropped.
func TestWithoutForced(t *testing.T) {
	t.Parallel()
	env := &Env{Log: slog.New(slog.DiscardHandler)}
	cut := fmt.Errorf("worker w: stop cut short: %w", errForced)
	other := errors.New("delete worker row: database is locked")
	for _, tt := range []struct {
		name string
		in   error
		want []error // errors.Is must hold for each; nil: want nil
	}{
		{"nil", nil, nil},
		{"only the cut", cut, nil},
		{"the cut and another", errors.Join(cut, other), []error{other}},
		{"another only", other, []error{other}},
	} {
		got := withoutForced(env, tt.in)
		if tt.want == nil && got != nil {
			t.Errorf("%s: %v, want nil", tt.name, got)
		}
		for _, w := range tt.want {
			if !errors.Is(got, w) || errors.Is(got, errForced) {
				t.Errorf("%s: %v, want %v without the cut", tt.name, got, w)
			}
		}
	}
}
