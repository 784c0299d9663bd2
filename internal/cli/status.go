package cli

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/proxyline/proxyline/internal/queue"
	"github.com/proxyline/proxyline/internal/supervise"
)

// statusOptions are the flags of proxyline status.
type statusOptions struct {
	db       queue.DatabaseFlag // --database
	json     bool
	wait     time.Duration
	interval time.Duration
	layers   bool // probe the supervision layers a worker started here would get
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
	if err := o.db.Validate(); err != nil {
		errs = append(errs, err)
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
			"supervision layers each worker has in force, and the latest jobs that failed (discarded or\n"+
			"cancelled) with their last error. With --wait D, first waits until no job is available,\n"+
			"scheduled, pending, retryable or running; exits 1 if D passes first, or if a job was\n"+
			"discarded or cancelled while it waited. Never creates or changes the database.\n"+
			"The --json form is documented in docs/queue.md.")
	o.db.Register(fs)
	fs.BoolVar(&o.json, "json", false, "print JSON")
	fs.DurationVar(&o.wait, "wait", 0, "wait up to this long for the queue to drain (0: do not wait)")
	fs.DurationVar(&o.interval, "interval", 200*time.Millisecond, "how often --wait looks")
	fs.BoolVar(&o.layers, "layers", false, "also probe the supervision layers a worker started here would get (starts two short probe processes)")
	if err := parseOptions(fs, env, args, o); err != nil {
		return err
	}
	here := probeLayers(ctx, env, o.layers)
	defer here() // on an early return too: the probe's processes are waited for
	st, err := openStore(ctx, env, o.db, queue.ReadOnly)
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
		// Print the last status either way, so the caller sees what was left or what failed.
		waitErr = waitOutcome(o.wait, s, waitErr)
	} else if s, err = st.Status(ctx); err != nil {
		return err
	}
	s.SupervisionHere = here()
	s.LayersProbed = o.layers
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

// probeLayers starts supervise.Detect when probe is set, beside the database's work, and returns
// a function that waits for it and returns the layers' names ([] without probe). Detect starts two
// probe processes (the binary re-executed): most of a status on a million-proxy pool before it
// was asked for (0.3-0.8 s of 0.6-1.3 s at load 30), so status only probes when asked.
func probeLayers(ctx context.Context, env *Env, probe bool) func() []string {
	if !probe {
		return func() []string { return []string{} }
	}
	done := make(chan []string, 1)
	go func() { done <- supervise.Detect(ctx, supervise.Config{Log: env.Log}).Names() }()
	var names []string
	var got bool
	return func() []string {
		if !got {
			names, got = <-done, true
		}
		if names == nil {
			return []string{}
		}
		return names
	}
}

// waitOutcome is the result of status --wait: a negative outcome (exit 1) when the queue did not
// drain in time, or when a job was discarded or cancelled while it waited (it will never run:
// "drained" would hide lost work).
func waitOutcome(wait time.Duration, s *queue.Status, waitErr error) error {
	r := s.Wait
	var failed string
	if r != nil && r.Discarded+r.Cancelled > 0 {
		failed = fmt.Sprintf("%d jobs discarded and %d cancelled since the wait began (ids %s); their errors: proxyline status",
			r.Discarded, r.Cancelled, jobIDs(r.JobIDs))
	}
	switch {
	case waitErr != nil && failed != "":
		return failure(fmt.Errorf("queue not drained after %s: %d jobs unfinished; %s", wait, s.Unfinished, failed))
	case waitErr != nil:
		return failure(fmt.Errorf("queue not drained after %s: %d jobs unfinished", wait, s.Unfinished))
	case failed != "":
		return failure(fmt.Errorf("queue drained, but %s", failed))
	}
	return nil
}

func jobIDs(ids []int64) string {
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = strconv.FormatInt(id, 10)
	}
	return strings.Join(parts, ", ")
}

func printStatus(w io.Writer, s *queue.Status) {
	fmt.Fprintf(w, "database  %s (%s)\n", s.Database, s.Engine)
	fmt.Fprintf(w, "jobs     ")
	for _, k := range queue.JobStates() {
		fmt.Fprintf(w, " %s=%d", k, s.Jobs[k])
	}
	fmt.Fprintf(w, "\n          unfinished=%d\n", s.Unfinished)
	printFailed(w, s)
	fmt.Fprintf(w, "pool      %d proxies, %d alive, %d history rows\n", s.Pool.Total, s.Pool.Alive, s.Pool.History)
	fmt.Fprintf(w, "  by outcome  %s\n", counts(s.Pool.ByClass))
	fmt.Fprintf(w, "  alive by protocol  %s\n", counts(s.Pool.ByProtocol))
	if len(s.Sources) > 0 {
		fmt.Fprintf(w, "sources   %d (alive/checked/named, best first)\n", len(s.Sources))
		for i, y := range s.Sources {
			if i == 10 {
				fmt.Fprintf(w, "  ... %d more: proxyline export --sources\n", len(s.Sources)-i)
				break
			}
			fmt.Fprintf(w, "  %s  %d/%d/%d\n", y.Source, y.Alive, y.Checked, y.Candidates)
		}
	}
	if s.LayersProbed {
		fmt.Fprintf(w, "supervision layers here: %s\n", strings.Join(s.SupervisionHere, ", "))
	} else {
		fmt.Fprintf(w, "supervision layers here: not probed (status --layers)\n")
	}
	fmt.Fprintf(w, "workers   %d alive of %d registered\n", s.WorkersAlive, len(s.Workers))
	for _, wk := range s.Workers {
		state := wk.State
		fmt.Fprintf(w, "  %s  %s  backend=%s concurrency=%d running=%d heartbeat=%s ago\n    layers: %s\n",
			wk.ID, state, wk.Backend, wk.Concurrency, wk.RunningJob,
			wk.HeartbeatAge.Round(100*time.Millisecond), strings.Join(wk.Layers, ", "))
	}
}

// printFailed prints the failed (discarded, cancelled) jobs and what a --wait saw.
func printFailed(w io.Writer, s *queue.Status) {
	if r := s.Wait; r != nil {
		state := "drained"
		if !r.Drained {
			state = "NOT drained"
		}
		fmt.Fprintf(w, "wait      since %s: %s; %d discarded, %d cancelled meanwhile", r.Since.Format(time.RFC3339), state, r.Discarded, r.Cancelled)
		if len(r.JobIDs) > 0 {
			fmt.Fprintf(w, " (ids %s)", jobIDs(r.JobIDs))
		}
		fmt.Fprintln(w)
	}
	if len(s.Failed) == 0 {
		return
	}
	fmt.Fprintf(w, "failed    %d discarded, %d cancelled; the most recent:\n", s.Jobs["discarded"], s.Jobs["cancelled"])
	for _, f := range s.Failed {
		fmt.Fprintf(w, "  job %d %s %s, attempt %d of %d, %s: %s\n", f.ID, f.Kind, f.State, f.Attempt, f.MaxAttempts,
			f.FinalizedAt.Format(time.RFC3339), cmpName(f.Source))
		fmt.Fprintf(w, "    %s\n", cmp.Or(f.Error, "(no error recorded)"))
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
