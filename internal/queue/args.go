package queue

import (
	"errors"
	"fmt"
	"time"

	"github.com/riverqueue/river"

	"github.com/proxyline/proxyline/internal/check"
)

// Job kinds. Scrape is reserved for the scraper (a later issue): its kind name is taken so that
// queues can be shared by versions that know it and versions that do not (those leave it alone,
// see FetchOnlyKnownKinds in the worker).
const (
	KindCheck  = "check"
	KindScrape = "scrape"
)

// DefaultMaxAttempts is how often a check job is tried (including runs ended by a dead worker)
// before it is discarded.
const DefaultMaxAttempts = 5

// CheckOptions are the check settings a job carries, so that every worker checks the same way.
// The judge fields are check.JudgeConfig's, under the same names; the JSON names are those of
// the jobs already in databases, and stay.
type CheckOptions struct {
	// Judge is the judge URL. Empty means the checker's default judge.
	Judge string `json:"judge,omitempty"`
	// Timeout bounds one proxy's check. Zero means the checker's default.
	Timeout time.Duration `json:"timeout,omitempty"`
	// JudgeCAPEM holds the CA certificates (PEM) that verify an HTTPS judge, instead of the
	// system roots (check.JudgeConfig.CAPEM).
	JudgeCAPEM string `json:"judge_ca_pem,omitempty"`
	// JudgeCAPath is a PEM file on the worker's machine, read by the worker. Prefer JudgeCAPEM.
	JudgeCAPath string `json:"judge_ca_path,omitempty"`
	// JudgeStatus is the judge's expected HTTP status. Zero means 200.
	JudgeStatus int `json:"expect_status,omitempty"`
	// JudgeKeyword must appear in the judge's body when set (a third-party judge).
	JudgeKeyword string `json:"expect_keyword,omitempty"`
	// JudgePostQuantum offers the judge post-quantum key exchanges too (--judge-pq).
	JudgePostQuantum bool `json:"judge_pq,omitempty"`
}

// Validate checks the options for values no checker accepts.
func (o CheckOptions) Validate() error {
	var errs []error
	if o.Judge != "" {
		if err := check.ValidateJudgeURL(o.Judge); err != nil {
			errs = append(errs, err)
		}
	}
	if o.Timeout < 0 {
		errs = append(errs, fmt.Errorf("timeout %s is negative", o.Timeout))
	}
	if o.JudgeStatus != 0 && (o.JudgeStatus < 100 || o.JudgeStatus > 599) {
		errs = append(errs, fmt.Errorf("judge status %d is not an HTTP status", o.JudgeStatus))
	}
	if o.JudgeCAPEM != "" && o.JudgeCAPath != "" {
		errs = append(errs, errors.New("judge CA given both as PEM and as a path"))
	}
	return errors.Join(errs...)
}

// CheckArgs is a check job: a chunk of proxies, as lines of a list
// (scheme://[user:pass@]host:port or bare host:port), and how to check them.
type CheckArgs struct {
	Proxies []string     `json:"proxies"`
	Options CheckOptions `json:"options"`
	// Source names where the chunk came from (file:first-line), for people reading the queue.
	Source string `json:"source,omitempty"`
}

// Kind is the River job kind.
func (CheckArgs) Kind() string { return KindCheck }

// InsertOpts are the defaults of every check job.
func (CheckArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{MaxAttempts: DefaultMaxAttempts, Queue: river.QueueDefault}
}
