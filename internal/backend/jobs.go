package backend

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"time"

	"github.com/proxyline/proxyline/internal/check"
	"github.com/proxyline/proxyline/internal/check/external"
	"github.com/proxyline/proxyline/internal/queue"
	"github.com/proxyline/proxyline/internal/supervise"
	"github.com/proxyline/proxyline/proxy"
)

// DefaultParallel is JobsConfig.Parallel's default.
const DefaultParallel = 256

// JobOptions is what a check job carries of the judge and the timeout (enqueue, scrape
// --enqueue): the CA's certificates themselves, read from the file here, so that workers on
// other machines check the same way without the file.
func JobOptions(j check.JudgeConfig, timeout time.Duration) (queue.CheckOptions, error) {
	if err := j.LoadCA(); err != nil {
		return queue.CheckOptions{}, fmt.Errorf("--judge-ca: %w", err)
	}
	o := queue.CheckOptions{Judge: j.URL, Timeout: timeout, JudgeCAPEM: j.CAPEM, JudgeStatus: j.Status, JudgeKeyword: j.Keyword,
		JudgePostQuantum: j.PostQuantum}
	return o, o.Validate()
}

// JudgeOf is the judge a job's options describe.
func JudgeOf(o queue.CheckOptions) check.JudgeConfig {
	return check.JudgeConfig{URL: o.Judge, CAFile: o.JudgeCAPath, CAPEM: o.JudgeCAPEM, Status: o.JudgeStatus, Keyword: o.JudgeKeyword,
		PostQuantum: o.JudgePostQuantum}
}

// JobsConfig configures Jobs. The zero value of each field but Runner means its default.
type JobsConfig struct {
	// Exec selects the external tool; its zero value is the in-process checker.
	Exec Exec
	// Timeout bounds one check of a job that carries no timeout. Default check.DefaultTimeout.
	Timeout time.Duration
	// Parallel is how many proxies the worker checks at once, shared by all its running jobs
	// (in-process), or the tool's {concurrency} in each run. Default DefaultParallel.
	Parallel int
	// Runner runs the tool: the worker's supervisor, started. Required with Exec.
	Runner *supervise.Supervisor
	// Log receives diagnostics. Default: discard.
	Log *slog.Logger
}

// Jobs makes the checker of each job's options for a queue worker (queue.WorkerConfig's
// NewChecker). It does not keep them: the worker keeps one per distinct options, so the judge is
// asked once per enqueue, not once per job. In-process checks of all jobs share Parallel slots
// (queue.Slots); the external tool runs once per job's chunk under the worker's supervisor.
type Jobs struct {
	cfg   JobsConfig
	slots *queue.Slots // shared by every in-process job of the worker
}

// NewJobs returns the job checkers of cfg.
func NewJobs(cfg JobsConfig) (*Jobs, error) {
	cfg.Timeout = cmp.Or(cfg.Timeout, check.DefaultTimeout)
	cfg.Parallel = cmp.Or(cfg.Parallel, DefaultParallel)
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Exec.Template != "" && cfg.Runner == nil {
		return nil, errors.New("job checkers: an external tool needs the worker's supervisor")
	}
	return &Jobs{cfg: cfg, slots: queue.NewSlots(cfg.Parallel)}, nil
}

// Name is the backend's name for status: "inprocess" or "exec".
func (j *Jobs) Name() string {
	if j.cfg.Exec.Template != "" {
		return BackendExec
	}
	return BackendInProcess
}

// NewChecker makes the checker of a job's options. A failure of this worker's own set-up (the
// judge does not answer from here, a CA file named by the job is not on this machine) wraps
// check.ErrSetup, so the job waits instead of using its attempts; bad options do not.
func (j *Jobs) NewChecker(ctx context.Context, o queue.CheckOptions) (queue.Checker, error) {
	timeout := cmp.Or(o.Timeout, j.cfg.Timeout)
	if j.cfg.Exec.Template != "" {
		c := j.cfg.Exec.checker(o.Judge, timeout, j.cfg.Parallel, j.cfg.Runner, j.cfg.Log)
		if err := c.Validate(); err != nil {
			return nil, err
		}
		return execChunk{c}, nil
	}
	judge := JudgeOf(o)
	if err := judge.LoadCA(); err != nil {
		if pe := (*fs.PathError)(nil); errors.As(err, &pe) {
			return nil, fmt.Errorf("judge CA on this worker: %w: %w", check.ErrSetup, err)
		}
		return nil, err
	}
	opts, err := judge.Options(timeout, j.cfg.Log)
	if err != nil {
		return nil, err
	}
	c, err := check.New(opts)
	if err != nil {
		return nil, err
	}
	if err := c.Prepare(ctx); err != nil {
		// The judge cannot be reached or is not what the job says from this worker: a set-up
		// failure, not the proxies' (the job waits instead of using its attempts).
		return nil, fmt.Errorf("%w: %w", check.ErrSetup, err)
	}
	return queue.PerProxy(c.Check, j.slots), nil
}

// execChunk adapts external.Checker to queue.Checker: one result per proxy, the ones the tool
// did not report alive with class dead (a tool says nothing more). Set-up failures wrap
// check.ErrSetup (external.ErrSetup).
type execChunk struct{ c *external.Checker }

func (e execChunk) CheckChunk(ctx context.Context, ps []proxy.Proxy) ([]check.Result, error) {
	return e.c.Results(ctx, ps)
}
