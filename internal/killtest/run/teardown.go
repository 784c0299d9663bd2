package run

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/proxyline/proxyline/internal/killtest/observe"
	"github.com/proxyline/proxyline/internal/killtest/report"
)

// teardown removes everything the run started, on every path (see the package doc for the
// order). A non-nil error means something survived: killtest must exit 2.
func (r *runner) teardown() error {
	deadline := r.opts.CleanupDeadline
	if deadline <= 0 {
		deadline = 5 * time.Second
	}
	r.mu.Lock()
	procs := append([]*proc(nil), r.procs...)
	r.mu.Unlock()
	for _, p := range procs {
		p.killGroup()
	}
	if r.cg != nil {
		if err := r.cg.kill(); err != nil {
			r.log.Warn("killtest teardown", "err", err)
		}
	}
	var errs []error
	if r.obs != nil {
		end := time.Now().Add(deadline)
		var left []observe.Process
		for {
			if err := r.obs.Refresh(); err != nil {
				errs = append(errs, fmt.Errorf("teardown: sample processes: %w", err))
				break
			}
			left = left[:0]
			for _, p := range r.obs.Alive() {
				left = append(left, p)
				if p.State != 'Z' {
					_ = signalKey(p.PID, p.StartTime, syscall.SIGKILL)
				}
			}
			if len(left) == 0 || time.Now().After(end) {
				break
			}
			time.Sleep(pollEvery) // polling the process table with a deadline
		}
		if len(left) > 0 {
			var desc []string
			for _, p := range left {
				desc = append(desc, fmt.Sprintf("pid %d state %c %q", p.PID, p.State, strings.Join(p.Cmdline, " ")))
			}
			errs = append(errs, fmt.Errorf("teardown: %d process(es) survived SIGKILL for %v: %s", len(left), deadline, strings.Join(desc, "; ")))
		}
	}
	for _, p := range procs {
		t := time.NewTimer(deadline)
		select {
		case <-p.done:
		case <-t.C:
			errs = append(errs, fmt.Errorf("teardown: %s (pid %d) not reaped", p.name, p.pid))
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
	}
	if r.obs != nil {
		r.obs.Mark("end")
		r.obs.Stop()
		r.timeline = r.obs.Timeline()
	}
	if r.cg != nil {
		if err := r.cg.remove(deadline); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// chart turns the observer's timeline into report series: 10 Hz process counts, and RSS and fd
// totals over the attributed processes in 1 s buckets.
func (r *runner) chart() report.Chart {
	tl := r.timeline
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
