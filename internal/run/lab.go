package run

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"time"

	"github.com/proxyline/proxyline/internal/lab"
	"github.com/proxyline/proxyline/internal/queue"
	"github.com/proxyline/proxyline/internal/scrape"
)

// labRun is the lab of `run --lab` and its private directory (the lab's files, its CA, and the
// database unless the configuration names one).
type labRun struct {
	lab    *lab.Lab
	dir    string
	caFile string
	log    *slog.Logger
}

// LabDirPrefix begins the name of the temporary directory of `run --lab`:
// proxyline-run-lab.<pid>.<starttime>.<random>, owned by the process with that pid and start
// time. The next `run --lab` removes those whose owner is gone (killed before it could).
const LabDirPrefix = "proxyline-run-lab."

var labDirRE = regexp.MustCompile(`^` + regexp.QuoteMeta(LabDirPrefix) + `([1-9][0-9]{0,18})\.(0|[1-9][0-9]{0,19})\.[0-9]+$`)

// labSources is how many proxy list sources the lab serves its candidates in.
const labSources = 5

// labTimeout bounds a check against the lab: its live proxies answer in milliseconds; its
// blackholes never do, so a long timeout only slows the first round.
const labTimeout = 5 * time.Second

// startLab starts the lab and points cfg at it: the judge and its CA, the sources, a shorter
// check timeout; and the database into the lab's directory when cfg keeps the default one.
func startLab(ctx context.Context, cfg *Config, perKind int, log *slog.Logger) (*labRun, error) {
	sweepLabDirs(os.TempDir(), log)
	self, err := queue.Self()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", fmt.Sprintf("%s%d.%d.", LabDirPrefix, self.PID, self.StartTime))
	if err != nil {
		return nil, fmt.Errorf("lab directory: %w", err)
	}
	n := cmp.Or(perKind, 5)
	l, err := lab.Start(ctx, lab.Config{HTTP: n, HTTPAuth: n, HTTPS: n, SOCKS4: n, SOCKS4A: n, SOCKS5: n, SOCKS5Auth: n,
		Transparent: n, Anonymous: n, Refused: n, Blackhole: n, Liar: n, Alter: n, Bare: n,
		Sources: labSources, Dir: dir, Log: log})
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("start lab: %w", err)
	}
	r := &labRun{lab: l, dir: dir, caFile: filepath.Join(dir, "ca.pem"), log: log}
	sources, err := scrape.LoadConfig(filepath.Join(dir, "sources.toml"))
	if err != nil {
		return nil, errors.Join(fmt.Errorf("lab sources: %w", err), r.stop(context.WithoutCancel(ctx)))
	}
	cfg.Scrape.Sources = sources.Sources
	cfg.Check.Judge, cfg.Check.JudgeCA, cfg.Check.JudgeKeyword = l.JudgeURL(), r.caFile, ""
	cfg.Check.Timeout = Duration(min(cfg.Check.Timeout.D(), labTimeout))
	if cfg.Database.URL == Default().Database.URL {
		cfg.Database.URL = filepath.Join(dir, "proxyline.db")
	}
	log.Info("lab started", "proxies", len(l.Candidates()), "sources", len(sources.Sources), "judge", l.JudgeURL(), "dir", dir)
	return r, nil
}

// stop stops the lab and removes its directory.
func (r *labRun) stop(ctx context.Context) error {
	return errors.Join(r.lab.Stop(ctx), os.RemoveAll(r.dir))
}

// sweepLabDirs removes the lab directories under base whose owner process is gone.
func sweepLabDirs(base string, log *slog.Logger) {
	entries, err := os.ReadDir(base)
	if err != nil {
		return
	}
	for _, e := range entries {
		m := labDirRE.FindStringSubmatch(e.Name())
		if m == nil || !e.IsDir() || !ownDir(filepath.Join(base, e.Name())) {
			continue
		}
		pid, err1 := strconv.Atoi(m[1])
		start, err2 := strconv.ParseUint(m[2], 10, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		if alive, err := (queue.Identity{PID: pid, StartTime: start}).Alive(); err != nil || alive {
			continue
		}
		path := filepath.Join(base, e.Name())
		if err := os.RemoveAll(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			log.Warn("remove the lab directory of a dead run", "dir", path, "err", err)
			continue
		}
		log.Info("removed the lab directory of a dead run", "dir", path, "pid", pid)
	}
}

// ownDir reports whether path is a directory of this process's user (never another user's).
func ownDir(path string) bool {
	fi, err := os.Lstat(path)
	if err != nil || !fi.IsDir() {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && int(st.Uid) == os.Getuid()
}
