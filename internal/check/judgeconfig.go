package check

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"
)

// MaxCAFile bounds a --judge-ca file. A job carries its certificates to every worker, once per
// job; a whole system bundle is about 220 KiB.
const MaxCAFile = 1 << 20

// JudgeConfig is the judge of every command that checks: check and scrape --check use it
// directly; enqueue and scrape --enqueue put it in their jobs (queue.CheckOptions, with the CA
// certificates themselves), and the worker checks each job with it. The flags (Register) and
// their meaning are the same everywhere; docs/check.md, "The judge", is the one description.
//
// The CA (--judge-ca) replaces the system roots: when one is given, the judge's certificate,
// and an https:// proxy's, must chain to one of its certificates, and to nothing else. A user
// who names a CA wants that CA for a private judge; adding it to the system roots would also
// trust every public CA, and would make the outcome depend on each worker's own roots, while a
// job that carries its CA checks the same way on every machine.
type JudgeConfig struct {
	// URL is the judge, http or https (ValidateJudgeURL). The commands require it, except when
	// an external checker that does not use {judge} does the checking.
	URL string
	// CAFile is a PEM file of CA certificates (--judge-ca). LoadCA reads it into CAPEM. A job
	// may also name a file on the worker's machine here, which the worker reads.
	CAFile string
	// CAPEM holds the CA certificates as PEM: what LoadCA read from CAFile, or what a job carried.
	// Empty (and no CAFile): the system roots.
	CAPEM string
	// Status is the HTTP status the judge must answer with. Zero means 200.
	Status int
	// Keyword, when set, selects third-party judge mode: the page must contain it (Options).
	Keyword string
	// PostQuantum offers the judge Go's default key exchanges, post-quantum hybrids first (see
	// Options.PostQuantum). Default false: classic ones, cheaper.
	PostQuantum bool
}

// Register defines the judge flags on fs: --judge, --judge-ca, --judge-status, --judge-keyword
// and --judge-pq, with the same names, defaults and help on every command.
func (j *JudgeConfig) Register(fs *flag.FlagSet) {
	fs.StringVar(&j.URL, "judge", "", "judge `URL`, http or https: proxyline judge's, or a third-party one with --judge-keyword")
	fs.StringVar(&j.CAFile, "judge-ca", "", "PEM `file` of the CA certificates that verify an https judge (and https proxies) instead of the system roots; jobs carry them to their workers")
	fs.IntVar(&j.Status, "judge-status", 200, "HTTP `status` the judge must answer with")
	fs.StringVar(&j.Keyword, "judge-keyword", "", "third-party judge: `text` its page must contain (proxyline's judge echoes a token instead)")
	fs.BoolVar(&j.PostQuantum, "judge-pq", false, "offer an https judge post-quantum key exchanges too (Go's default, TLS 1.3): about a third more CPU per check")
}

// Validate reports every invalid field, naming its flag. An empty URL is valid here: whether a
// judge is required is the command's to say.
func (j JudgeConfig) Validate() error {
	var errs []error
	if j.URL != "" {
		if err := ValidateJudgeURL(j.URL); err != nil {
			errs = append(errs, fmt.Errorf("--judge: %w", err))
		}
	}
	if j.Status != 0 && (j.Status < 100 || j.Status > 599) {
		errs = append(errs, fmt.Errorf("--judge-status %d: not an HTTP status", j.Status))
	}
	if j.CAFile != "" && j.CAPEM != "" {
		errs = append(errs, errors.New("judge CA given both as a file and as PEM"))
	}
	return errors.Join(errs...)
}

// LoadCA reads CAFile, if set, and puts its certificates into CAPEM (re-encoded: only the
// certificates, nothing else the file held), clearing CAFile; it checks CAPEM otherwise. A file
// that cannot be read gives an error wrapping the *fs.PathError.
func (j *JudgeConfig) LoadCA() error {
	if j.CAFile == "" {
		if j.CAPEM != "" {
			_, _, err := parseCAs([]byte(j.CAPEM), "judge CA")
			return err
		}
		return nil
	}
	f, err := os.Open(j.CAFile)
	if err != nil {
		return fmt.Errorf("judge CA: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxCAFile+1))
	if err != nil {
		return fmt.Errorf("judge CA: %w", err)
	}
	if len(b) > MaxCAFile {
		return fmt.Errorf("judge CA %s: over %d bytes: not a CA bundle for a judge", j.CAFile, MaxCAFile)
	}
	_, canonical, err := parseCAs(b, j.CAFile)
	if err != nil {
		return err
	}
	j.CAPEM, j.CAFile = string(canonical), ""
	return nil
}

// RootCAs returns the pool that verifies the judge: exactly the configured CA certificates, or
// nil (the system roots) when none is configured. Call LoadCA first when CAFile is set.
func (j JudgeConfig) RootCAs() (*x509.CertPool, error) {
	if j.CAFile != "" {
		return nil, fmt.Errorf("judge CA %s not loaded", j.CAFile)
	}
	if j.CAPEM == "" {
		return nil, nil
	}
	pool, _, err := parseCAs([]byte(j.CAPEM), "judge CA")
	return pool, err
}

// Options returns a Checker's Options for this judge (LoadCA first when CAFile is set).
func (j JudgeConfig) Options(timeout time.Duration, log *slog.Logger) (Options, error) {
	roots, err := j.RootCAs()
	if err != nil {
		return Options{}, err
	}
	return Options{Judge: j.URL, JudgeStatus: j.Status, JudgeKeyword: j.Keyword, PostQuantum: j.PostQuantum,
		RootCAs: roots, Timeout: timeout, Log: log}, nil
}

// parseCAs parses PEM text that must hold one or more CERTIFICATE blocks and nothing but text
// around them (comments, as system bundles have). Any other block, a private key above all, is
// an error: the certificates travel in jobs and are stored in the queue. It returns the pool
// and the certificates re-encoded as PEM. name says where the text came from, for errors.
func parseCAs(b []byte, name string) (*x509.CertPool, []byte, error) {
	pool := x509.NewCertPool()
	var canonical bytes.Buffer
	rest, n := b, 0
	for {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			break
		}
		n++
		if block.Type != "CERTIFICATE" {
			return nil, nil, fmt.Errorf("%s: PEM block %d is a %s, not a CERTIFICATE (only CA certificates belong here)", name, n, block.Type)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: certificate %d: %w", name, n, err)
		}
		pool.AddCert(cert)
		_ = pem.Encode(&canonical, &pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}) // a bytes.Buffer does not fail
	}
	// pem.Decode skips what it cannot parse: a block it skipped is an error, not a comment.
	if begins := bytes.Count(b, []byte("-----BEGIN")); begins != n {
		return nil, nil, fmt.Errorf("%s: %d PEM blocks, of which %d do not parse", name, begins, begins-n)
	}
	if n == 0 {
		return nil, nil, fmt.Errorf("%s: no PEM certificate", name)
	}
	return pool, canonical.Bytes(), nil
}
