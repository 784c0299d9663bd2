package api

import (
	"context"
	"net/http"
	"time"

	"github.com/proxyline/proxyline/internal/pool"
	"github.com/proxyline/proxyline/internal/queue"
	"github.com/proxyline/proxyline/internal/supervise"
)

// Source is a source's yield: what its proxies turned out to be.
type Source struct {
	pool.SourceYield
	// Yield is alive / candidates (0 without candidates).
	Yield float64 `json:"yield"`
}

// Sources is the answer of GET /api/v1/sources.
type Sources struct {
	Sources []Source `json:"sources"` // best first (most live proxies)
}

// ReadSources reads every source's yield (the web UI's sources page too).
func ReadSources(ctx context.Context, db pool.DB) (Sources, error) {
	ys, err := pool.SourceYields(ctx, db)
	if err != nil {
		return Sources{}, err
	}
	out := Sources{Sources: make([]Source, 0, len(ys))}
	for _, y := range ys {
		s := Source{SourceYield: y}
		if y.Candidates > 0 {
			s.Yield = float64(y.Alive) / float64(y.Candidates)
		}
		out.Sources = append(out.Sources, s)
	}
	return out, nil
}

func (s *Server) sources(w http.ResponseWriter, r *http.Request) error {
	if err := known(r.URL.Query(), nil); err != nil {
		return err
	}
	out, err := ReadSources(r.Context(), s.cfg.Store.DB())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// Queue is the answer of GET /api/v1/queue: jobs by state (every River state, zeros included).
type Queue struct {
	Time       time.Time         `json:"time"`
	Jobs       map[string]int64  `json:"jobs"`
	JobsByKind map[string]int64  `json:"jobs_by_kind"`
	Unfinished int64             `json:"unfinished"` // available+scheduled+pending+retryable+running
	Failed     []queue.FailedJob `json:"failed"`     // the latest discarded or cancelled jobs
	States     []string          `json:"states"`     // the states in River's order
}

// JobStates are River's job states in the order a job goes through them.
func JobStates() []string {
	return []string{"available", "scheduled", "pending", "retryable", "running", "completed", "cancelled", "discarded"}
}

// QueueOf returns the queue part of a status.
func QueueOf(st *queue.Status) Queue {
	return Queue{Time: st.Time, Jobs: st.Jobs, JobsByKind: st.JobsByKind, Unfinished: st.Unfinished,
		Failed: nonNil(st.Failed), States: JobStates()}
}

func nonNil[T any](xs []T) []T {
	if xs == nil {
		return []T{}
	}
	return xs
}

func (s *Server) queueDepth(w http.ResponseWriter, r *http.Request) error {
	if err := known(r.URL.Query(), nil); err != nil {
		return err
	}
	st, err := s.cfg.Store.Status(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, QueueOf(st))
	return nil
}

// Workers is the answer of GET /api/v1/workers.
type Workers struct {
	Workers      []queue.WorkerStatus `json:"workers"`
	WorkersAlive int                  `json:"workers_alive"`
	// Layers names every supervision layer, outermost first: a worker's layers list those in
	// force for it, the others were not available on its machine (or were switched off).
	Layers []string `json:"layers"`
}

// AllLayers names every supervision layer, outermost first.
func AllLayers() []string {
	return supervise.Layers{ProcessGroup: true, Pdeathsig: true, Cgroup: true, PIDNamespace: true, Subreaper: true, Cookie: true}.Names()
}

// WorkersOf returns the workers part of a status.
func WorkersOf(st *queue.Status) Workers {
	ws := nonNil(st.Workers)
	for i := range ws {
		ws[i].Layers = nonNil(ws[i].Layers)
	}
	return Workers{Workers: ws, WorkersAlive: st.WorkersAlive, Layers: AllLayers()}
}

func (s *Server) workers(w http.ResponseWriter, r *http.Request) error {
	if err := known(r.URL.Query(), nil); err != nil {
		return err
	}
	st, err := s.cfg.Store.Status(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, WorkersOf(st))
	return nil
}

// status answers `proxyline status --json`'s document (docs/queue.md), without
// supervision_here (a property of the machine that runs status, not of the queue).
func (s *Server) status(w http.ResponseWriter, r *http.Request) error {
	if err := known(r.URL.Query(), nil); err != nil {
		return err
	}
	st, err := s.cfg.Store.Status(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, st)
	return nil
}
