package lab

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// TruthRecord is one line of truth.jsonl.
type TruthRecord struct {
	Proxy     string `json:"proxy"`     // the candidate as in candidates.txt
	Kind      string `json:"kind"`      // one of the Kind constants
	Alive     bool   `json:"alive"`     // what a correct checker says
	Scheme    string `json:"scheme"`    // the protocol the proxy speaks
	Anonymity string `json:"anonymity"` // transparent, anonymous, elite; "" if not alive
	ExitIP    string `json:"exit_ip"`   // the address the judge sees; "" if not alive
	Class     string `json:"class"`     // alive, refused, timeout or mismatch
	DelayMS   int64  `json:"delay_ms"`  // how long the proxy waits before answering
}

// Record returns t as a line of truth.jsonl.
func (t Truth) Record() TruthRecord {
	return TruthRecord{
		Proxy: t.Proxy.String(), Kind: t.Kind, Alive: t.Alive, Scheme: string(t.Scheme),
		Anonymity: t.Anonymity, ExitIP: t.ExitIP, Class: t.Class, DelayMS: t.Delay.Milliseconds(),
	}
}

// writeFiles writes candidates.txt, truth.jsonl, ca.pem, judge.txt (and backend.txt with a
// backend) into dir, each through a temporary file renamed into place, so a reader never sees
// half a file.
func (l *Lab) writeFiles(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("lab dir: %w", err)
	}
	if err := writeFileWith(filepath.Join(dir, "candidates.txt"), func(w *bufio.Writer) error {
		for _, p := range l.candidates {
			if _, err := fmt.Fprintln(w, p.String()); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return err
	}
	if err := writeFileWith(filepath.Join(dir, "truth.jsonl"), func(w *bufio.Writer) error {
		enc := json.NewEncoder(w)
		for _, t := range l.truth {
			if err := enc.Encode(t.Record()); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return err
	}
	if err := writeFileWith(filepath.Join(dir, "ca.pem"), func(w *bufio.Writer) error {
		_, err := w.Write(l.ca.certPEM)
		return err
	}); err != nil {
		return err
	}
	if err := writeFileWith(filepath.Join(dir, "judge.txt"), func(w *bufio.Writer) error {
		_, err := fmt.Fprintf(w, "%s\n%s\n", l.judgeURL, l.judgeTLS)
		return err
	}); err != nil || l.backend == nil {
		return err
	}
	return writeFileWith(filepath.Join(dir, "backend.txt"), func(w *bufio.Writer) error {
		_, err := fmt.Fprintf(w, "%s\n", l.backend.url)
		return err
	})
}

// writeFileWith writes path (mode 0644) with what fill writes, through a temporary file renamed
// into place, so a reader never sees half a file.
func writeFileWith(path string, fill func(w *bufio.Writer) error) error {
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(f.Name()) // after a successful rename this fails harmlessly
	w := bufio.NewWriter(f)
	err = fill(w)
	if err == nil {
		err = w.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
