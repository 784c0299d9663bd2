package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/proxyline/proxyline/internal/killtest/human"
	"github.com/proxyline/proxyline/internal/killtest/report"
	"github.com/proxyline/proxyline/internal/killtest/run"
	"github.com/proxyline/proxyline/internal/killtest/scenario"
)

// runOptions are the flags of killtest run.
type runOptions struct {
	Out      string // directory for stress_test_results.md; default "."
	JSON     string // optional JSON report file
	JUnit    string // optional JUnit XML file
	HTML     string // optional HTML report file
	Seed     int64  // base seed; 0 picks one (printed)
	seedSet  bool
	Runs     int    // repetitions of each scenario; default 1
	Bin      string // directory prepended to PATH for the system's programs
	Verbose  bool
	NoCgroup bool
}

// Validate checks the options.
func (o *runOptions) Validate() error {
	if o.Runs < 1 {
		return usageError("--runs %d: want at least 1", o.Runs)
	}
	if o.Bin != "" {
		fi, err := os.Stat(o.Bin)
		if err != nil || !fi.IsDir() {
			return usageError("--bin %s: not a directory", o.Bin)
		}
	}
	if o.Out == "" {
		return usageError("--out: empty")
	}
	return nil
}

func runCommand() command {
	return command{Name: "run", Summary: "run scenarios (default: the built-in suite) and write the reports", Run: func(ctx context.Context, env *Env, args []string) error {
		var o runOptions
		fs := newFlagSet("run", "[flags] [FILE|DIR|NAME...]", "Run scenarios against the real system: files, directories of *.yaml, or built-in names\n(see `killtest list`); no argument runs the built-in suite. Writes stress_test_results.md in --out.")
		fs.StringVar(&o.Out, "out", ".", "directory where stress_test_results.md is written")
		fs.StringVar(&o.JSON, "json", "", "also write the results as JSON to this file")
		fs.StringVar(&o.JUnit, "junit", "", "also write JUnit XML (for CI) to this file")
		fs.StringVar(&o.HTML, "html", "", "also write a self-contained HTML page with charts to this file")
		fs.Func("seed", "base seed of the random choices (a run's seed is base+run-1); default: random, printed", func(s string) error {
			v, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return fmt.Errorf("want an integer: %w", err)
			}
			o.Seed, o.seedSet = v, true
			return nil
		})
		fs.IntVar(&o.Runs, "runs", 1, "run each scenario this many times (flakiness hunting)")
		fs.StringVar(&o.Bin, "bin", "", "directory searched first for the system's programs (prepended to PATH)")
		fs.BoolVar(&o.Verbose, "v", false, "log every event (start, ready, fault, stop) to stderr")
		fs.BoolVar(&o.NoCgroup, "no-cgroup", false, "do not create a run cgroup even where cgroup v2 is writable")
		if err := parseFlags(fs, env, args); err != nil {
			return err
		}
		if err := o.Validate(); err != nil {
			return err
		}
		scs, err := resolve(fs.Args())
		if err != nil {
			return exitWith(ExitUnknown, err)
		}
		if !o.seedSet {
			o.Seed = rand.Int64N(1 << 31)
		}
		return runSuite(ctx, env, o, scs, fs.Args())
	}}
}

func runSuite(ctx context.Context, env *Env, o runOptions, scs []*scenario.Scenario, args []string) error {
	log := env.Log // warnings only (see program)
	if o.Verbose {
		log = slog.New(slog.NewTextHandler(env.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	suite := report.Suite{Command: runLine(o, o.Seed, o.Runs, true, envAssignments(env.Getenv, scs...), args), Started: time.Now()}
	fmt.Fprintf(env.Stdout, "killtest: %d scenario(s) × %d run(s), seed %d\n", len(scs), o.Runs, o.Seed)
	samples := filepath.Join(o.Out, "killtest-samples")
	if err := os.MkdirAll(samples, 0o755); err != nil {
		return exitWith(ExitUnknown, fmt.Errorf("create %s: %w", samples, err))
	}
	opts := run.Options{Bin: o.Bin, Log: log, NoCgroup: o.NoCgroup, SamplesDir: samples, Reproduce: func(sc *scenario.Scenario, seed int64) string {
		return runLine(o, seed, 1, false, envAssignments(env.Getenv, sc), []string{target(sc)})
	}}
	for _, sc := range scs {
		for i := 1; i <= o.Runs; i++ {
			if ctx.Err() != nil {
				break
			}
			res := run.Run(ctx, sc, i, o.Seed+int64(i-1), opts)
			suite.Scenarios = append(suite.Scenarios, res)
			line := fmt.Sprintf("%-7s %s", verdictWord(res.Verdict), sc.Name)
			if o.Runs > 1 {
				line += fmt.Sprintf(" #%d", i)
			}
			line += fmt.Sprintf(" (%s)", human.Duration(res.Duration))
			for _, c := range res.Checks {
				if c.Verdict != report.Pass {
					line += fmt.Sprintf("\n        %s %s: %s", verdictWord(c.Verdict), c.Name, c.Summary)
				}
			}
			if res.HarnessError != "" {
				line += "\n        harness: " + res.HarnessError
			}
			if res.CleanupError != "" {
				line += "\n        cleanup: " + res.CleanupError
			}
			fmt.Fprintln(env.Stdout, line)
		}
	}
	suite.Finished = time.Now()
	werr := writeReports(o, suite)
	p, f, u := suite.Counts()
	fmt.Fprintf(env.Stdout, "killtest: %s — %d passed, %d failed, %d unknown; report %s\n",
		verdictWord(suite.Verdict()), p, f, u, filepath.Join(o.Out, "stress_test_results.md"))
	if werr != nil {
		return exitWith(ExitUnknown, werr)
	}
	if ctx.Err() != nil {
		return exitWith(ExitUnknown, fmt.Errorf("interrupted: %w", ctx.Err()))
	}
	if code := suite.ExitCode(); code != ExitPass {
		return exitWith(code, errors.New(""))
	}
	return nil
}

func verdictWord(v any) string {
	switch fmt.Sprint(v) {
	case "pass":
		return "PASS"
	case "fail":
		return "FAIL"
	}
	return "UNKNOWN"
}

// writeReports writes stress_test_results.md and the optional reports; files are written whole
// to a temp name and renamed, so a reader never sees half a report.
func writeReports(o runOptions, s report.Suite) error {
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return fmt.Errorf("create --out %s: %w", o.Out, err)
	}
	type out struct {
		path  string
		write func(f *os.File) error
	}
	outs := []out{{filepath.Join(o.Out, "stress_test_results.md"), func(f *os.File) error { return report.Markdown(f, s) }}}
	if o.JSON != "" {
		outs = append(outs, out{o.JSON, func(f *os.File) error { return report.JSON(f, s) }})
	}
	if o.JUnit != "" {
		outs = append(outs, out{o.JUnit, func(f *os.File) error { return report.JUnit(f, s) }})
	}
	if o.HTML != "" {
		outs = append(outs, out{o.HTML, func(f *os.File) error { return report.HTML(f, s) }})
	}
	var errs []error
	for _, w := range outs {
		if err := writeFile(w.path, w.write); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func writeFile(path string, write func(*os.File) error) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	// Reports are for others to read (CreateTemp makes 0600).
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		os.Remove(f.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := write(f); err != nil {
		f.Close()
		os.Remove(f.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
