package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/proxyline/proxyline/internal/queue"
	"github.com/proxyline/proxyline/internal/supervise"
)

// statusOptions are the flags of proxyline status.
type statusOptions struct {
	database string
	json     bool
	wait     time.Duration
	interval time.Duration
}

// Validate checks the flags.
func (o *statusOptions) Validate() error {
	var errs []error
	if o.wait < 0 {
		errs = append(errs, fmt.Errorf("--wait %s: must not be negative", o.wait))
	}
	if o.interval <= 0 {
		errs = append(errs, fmt.Errorf("--interval %s: must be positive", o.interval))
	}
	if err := (queue.Config{Database: o.database}).Validate(); err != nil {
		errs = append(errs, fmt.Errorf("--database: %w", err))
	}
	if len(errs) > 0 {
		return usageError("%w", errors.Join(errs...))
	}
	return nil
}

func statusCommand() command {
	return command{
		Name:    "status",
		Summary: "show jobs by state, the pool, and the workers; --wait for the queue to drain",
		Run:     runStatus,
	}
}

func runStatus(ctx context.Context, env *Env, args []string) error {
	o := &statusOptions{}
	fs := newFlagSet("status", "[flags]",
		"Prints jobs by state, the pool by outcome and protocol, the workers (alive or not) and the\n"+
			"supervision layers each worker has in force. With --wait D, first waits until no job is\n"+
			"available, scheduled, pending, retryable or running; exits 1 if D passes first.\n"+
			"The --json form is documented in docs/queue.md.")
	databaseFlag(fs, &o.database)
	fs.BoolVar(&o.json, "json", false, "print JSON")
	fs.DurationVar(&o.wait, "wait", 0, "wait up to this long for the queue to drain (0: do not wait)")
	fs.DurationVar(&o.interval, "interval", 200*time.Millisecond, "how often --wait looks")
	if err := parseOptions(fs, env, args, o); err != nil {
		return err
	}
	st, err := queue.Open(ctx, queue.Config{Database: o.database, Logger: env.Log})
	if err != nil {
		return err
	}
	defer st.Close()
	var s *queue.Status
	var waitErr error
	if o.wait > 0 {
		wctx, cancel := context.WithTimeout(ctx, o.wait)
		s, waitErr = st.Wait(wctx, o.interval)
		cancel()
		if waitErr != nil && s == nil {
			return waitErr
		}
		if waitErr != nil {
			// Print the last status so the caller sees what was left.
			waitErr = failure(fmt.Errorf("queue not drained after %s: %d jobs unfinished", o.wait, s.Unfinished))
		}
	} else if s, err = st.Status(ctx); err != nil {
		return err
	}
	s.SupervisionHere = layerNames(supervise.Detect(ctx, supervise.Config{Log: env.Log}))
	if s.SupervisionHere == nil {
		s.SupervisionHere = []string{}
	}
	if o.json {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(s); err != nil {
			return fmt.Errorf("write status: %w", err)
		}
		return waitErr
	}
	printStatus(env.Stdout, s)
	return waitErr
}

func printStatus(w io.Writer, s *queue.Status) {
	fmt.Fprintf(w, "database  %s (%s)\n", s.Database, s.Engine)
	fmt.Fprintf(w, "jobs     ")
	for _, k := range []string{"available", "scheduled", "pending", "retryable", "running", "completed", "cancelled", "discarded"} {
		fmt.Fprintf(w, " %s=%d", k, s.Jobs[k])
	}
	fmt.Fprintf(w, "\n          unfinished=%d\n", s.Unfinished)
	fmt.Fprintf(w, "pool      %d proxies, %d alive, %d history rows\n", s.Pool.Total, s.Pool.Alive, s.Pool.History)
	fmt.Fprintf(w, "  by outcome  %s\n", counts(s.Pool.ByClass))
	fmt.Fprintf(w, "  alive by protocol  %s\n", counts(s.Pool.ByProtocol))
	fmt.Fprintf(w, "supervision layers here: %s\n", strings.Join(s.SupervisionHere, ", "))
	fmt.Fprintf(w, "workers   %d alive of %d registered\n", s.WorkersAlive, len(s.Workers))
	for _, wk := range s.Workers {
		state := "dead"
		if wk.Alive {
			state = "alive"
		}
		fmt.Fprintf(w, "  %s  %s  backend=%s concurrency=%d running=%d heartbeat=%s ago\n    layers: %s\n",
			wk.ID, state, wk.Backend, wk.Concurrency, wk.RunningJob,
			time.Since(wk.HeartbeatAt).Round(100*time.Millisecond), strings.Join(wk.Layers, ", "))
	}
}

func counts(m map[string]int64) string {
	if len(m) == 0 {
		return "-"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s=%d", cmpName(k), m[k])
	}
	return b.String()
}

func cmpName(k string) string {
	if k == "" {
		return "(none)"
	}
	return k
}
