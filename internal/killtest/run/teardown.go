package run

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/proxyline/proxyline/internal/killtest/observe"
	"github.com/proxyline/proxyline/internal/killtest/report"
	"github.com/proxyline/proxyline/internal/proctab"
)

// teardown removes everything the run started, on every path (see the package doc for the
// order). A non-nil error means something survived: killtest must exit 2.
func (r *runner) teardown() error {
	deadline := r.opts.CleanupDeadline
	if deadline <= 0 {
		deadline = 5 * time.Second
	}
	procs := r.live.started()
	for _, p := range procs {
		p.killGroup()
	}
	if r.live.cg != nil {
		if err := r.live.cg.kill(); err != nil {
			r.log.Warn("killtest teardown", "err", err)
		}
	}
	var errs []error
	if r.live.obs != nil {
		errs = append(errs, r.killAttributed(deadline))
	}
	for _, p := range procs {
		errs = append(errs, reap(p, deadline))
	}
	if left := cookieScan(r.cookie); len(left) > 0 {
		errs = append(errs, fmt.Errorf("teardown self-check: %d process(es) still carry the run cookie: %v", len(left), left))
	}
	if r.live.obs != nil {
		r.live.obs.Mark("end")
		if err := r.live.obs.Stop(context.Background()); err != nil { // the observer cuts at once
			errs = append(errs, fmt.Errorf("teardown: %w", err))
		}
		r.live.timeline = r.live.obs.Timeline()
	}
	if r.live.cg != nil {
		errs = append(errs, r.live.cg.remove(deadline))
	}
	return errors.Join(errs...)
}

// killAttributed SIGKILLs every attributed process still alive (identity re-verified through a
// pidfd), polling the process table until the observer sees none or the deadline passes.
func (r *runner) killAttributed(deadline time.Duration) error {
	end := time.Now().Add(deadline)
	var left []observe.Process
	for {
		if err := r.live.obs.Refresh(); err != nil {
			return fmt.Errorf("teardown: sample processes: %w", err)
		}
		left = left[:0]
		for _, p := range r.live.obs.Alive() {
			left = append(left, p)
			if p.State != 'Z' {
				_ = signalKey(p.PID, p.StartTime, syscall.SIGKILL, 0)
			}
		}
		if len(left) == 0 || time.Now().After(end) {
			break
		}
		time.Sleep(pollEvery) // polling the process table with a deadline
	}
	if len(left) == 0 {
		return nil
	}
	var desc []string
	for _, p := range left {
		desc = append(desc, fmt.Sprintf("pid %d state %c %q", p.PID, p.State, strings.Join(p.Cmdline, " ")))
	}
	return fmt.Errorf("teardown: %d process(es) survived SIGKILL for %v: %s", len(left), deadline, strings.Join(desc, "; "))
}

// reap waits up to deadline for a process the runner started to be reaped, then for its output
// reader to finish (closing the pipe if a holder of its write end survived).
func reap(p *proc, deadline time.Duration) error {
	var err error
	t := time.NewTimer(deadline)
	select {
	case <-p.done:
	case <-t.C:
		err = fmt.Errorf("teardown: %s (pid %d) not reaped", p.name, p.pid)
	}
	t.Stop()
	// The output pipe reaches EOF once every holder is gone; close it if a holder survived.
	t = time.NewTimer(time.Second)
	select {
	case <-p.pumped:
	case <-t.C:
		p.out.Close()
		<-p.pumped
	}
	t.Stop()
	p.out.Close()
	return err
}

// chart turns the observer's timeline into report series: 10 Hz process counts, and RSS and fd
// totals over the attributed processes in 1 s buckets.
func (r *runner) chart() report.Chart {
	tl := r.live.timeline
	var c report.Chart
	for _, s := range tl.Samples {
		c.T = append(c.T, s.At.Sub(r.start).Seconds())
		c.Procs = append(c.Procs, float64(s.Attributed))
	}
	type bucket struct{ rss, fds float64 }
	buckets := map[int]*bucket{}
	for _, us := range tl.Usage {
		seen := map[int]bool{}
		for _, u := range us {
			b := int(math.Floor(u.At.Sub(r.start).Seconds()))
			if seen[b] {
				continue // one point per process per bucket
			}
			seen[b] = true
			if buckets[b] == nil {
				buckets[b] = &bucket{}
			}
			buckets[b].rss += float64(u.RSSAnon)
			if u.FDs > 0 {
				buckets[b].fds += float64(u.FDs)
			}
		}
	}
	keys := make([]int, 0, len(buckets))
	for k := range buckets {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	for _, k := range keys {
		c.UT = append(c.UT, float64(k))
		c.RSS = append(c.RSS, buckets[k].rss)
		c.FDs = append(c.FDs, buckets[k].fds)
	}
	return c
}

// cookieScan is the harness self-check, independent of the observer's bookkeeping: every process
// on the machine whose environment holds the run cookie (zombies have no environment to read and
// are the observer's). The caller is the harness itself, which does not carry the cookie.
func cookieScan(cookie string) []int {
	if cookie == "" {
		return nil
	}
	procs, err := proctab.WithEnv(cookie)
	if err != nil {
		return nil
	}
	out := make([]int, len(procs))
	for i, p := range procs {
		out[i] = p.PID
	}
	return out
}

// writeSamples writes the observer's 1 Hz per-process samples as CSV: seconds since the start,
// pid, start time, command, open fds (-1 unreadable), RssAnon bytes.
func (r *runner) writeSamples(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("write samples %s: %w", path, err)
	}
	w := csv.NewWriter(f)
	_ = w.Write([]string{"t_seconds", "pid", "starttime", "comm", "fds", "rss_anon_bytes"})
	comm := map[observe.Key]string{}
	for _, m := range r.live.timeline.Marks {
		for _, p := range m.Procs {
			comm[p.Key] = p.Comm
		}
	}
	keys := make([]observe.Key, 0, len(r.live.timeline.Usage))
	for k := range r.live.timeline.Usage {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].PID < keys[j].PID })
	for _, k := range keys {
		for _, u := range r.live.timeline.Usage[k] {
			_ = w.Write([]string{
				strconv.FormatFloat(u.At.Sub(r.start).Seconds(), 'f', 3, 64),
				strconv.Itoa(k.PID), strconv.FormatUint(k.StartTime, 10), comm[k],
				strconv.Itoa(u.FDs), strconv.FormatInt(u.RSSAnon, 10),
			})
		}
	}
	w.Flush()
	if err := w.Error(); err != nil {
		f.Close()
		return fmt.Errorf("write samples %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write samples %s: %w", path, err)
	}
	return nil
}
