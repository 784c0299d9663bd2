package watch

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/proxyline/proxyline/internal/proctab"
)

// stateVersion is the format of the state file.
const stateVersion = 1

// State is what a watch knows between two runs of `killtest watch --once` (a cron job or a
// systemd timer): the growth samples, the orphan candidates and the alerts sent. Without it each
// run starts afresh: growth cannot be judged, and every run alerts every finding again.
type State struct {
	Version int                  `json:"version"`
	Watch   string               `json:"watch"`
	Series  []SeriesState        `json:"series,omitempty"`
	Pending []PendingState       `json:"pending,omitempty"`
	Alerted map[string]time.Time `json:"alerted,omitempty"`
}

// SeriesState is one growth series.
type SeriesState struct {
	seriesKey
	Cmdline string   `json:"cmdline"`
	Samples []Sample `json:"samples"`
}

// PendingState is an orphan candidate: a process (pid, start time) seen orphaned since First.
type PendingState struct {
	PID       int       `json:"pid"`
	StartTime uint64    `json:"start_time"`
	First     time.Time `json:"first"`
}

// LoadState reads a state file; a file that does not exist is an empty state. A state of
// another watch (another name) is an error: two watches must not share a file.
func LoadState(path, watch string) (*State, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &State{Version: stateVersion, Watch: watch}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read state: %w", err)
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("state %s: %w (remove it to start afresh)", path, err)
	}
	if st.Version != stateVersion {
		return nil, fmt.Errorf("state %s: version %d, want %d (remove it to start afresh)", path, st.Version, stateVersion)
	}
	if st.Watch != watch {
		return nil, fmt.Errorf("state %s belongs to watch %q, not %q: give each watch its own --state", path, st.Watch, watch)
	}
	return &st, nil
}

// Save writes the state whole (a temporary file renamed over path), readable by its owner only:
// it holds command lines.
func (st *State) Save(path string) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	defer os.Remove(tmp.Name()) // after the rename, nothing to remove
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("save state: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	return nil
}

// State returns what the watcher keeps between scans, with the alerts a sent (a may be nil).
func (w *Watcher) State(a *Alerter) *State {
	st := &State{Version: stateVersion, Watch: w.cfg.File.Name}
	for k, s := range w.series {
		st.Series = append(st.Series, SeriesState{seriesKey: k, Cmdline: s.cmdline, Samples: s.samples})
	}
	for k, c := range w.pending {
		st.Pending = append(st.Pending, PendingState{PID: k.PID, StartTime: k.StartTime, First: c.first})
	}
	if a != nil {
		st.Alerted = a.sent
	}
	return st
}

// Restore takes up a saved state before the first scan: the samples, the candidates and the
// alerts of processes that are still the same (pid, start time) carry on; the scan drops the
// others.
func (w *Watcher) Restore(st *State, a *Alerter) {
	for _, s := range st.Series {
		w.series[s.seriesKey] = &series{cmdline: s.Cmdline, samples: s.Samples}
	}
	for _, p := range st.Pending {
		w.pending[proctab.Key{PID: p.PID, StartTime: p.StartTime}] = &candidate{first: p.First}
	}
	if a != nil && st.Alerted != nil {
		a.sent = st.Alerted
	}
}
