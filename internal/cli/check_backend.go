package cli

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/proxyline/proxyline/internal/check"
	"github.com/proxyline/proxyline/internal/check/external"
	"github.com/proxyline/proxyline/internal/supervise"
	"github.com/proxyline/proxyline/proxy"
)

// checkAllFunc checks every proxy of ps, calling emit once per finished check from one goroutine
// at a time. It returns when all are done or ctx is canceled; its error is a breakdown of the
// backend (an external tool that failed), reported after the results that were obtained.
type checkAllFunc func(ctx context.Context, ps []proxy.Proxy, emit func(check.Result)) error

// checkBackend returns the in-process checker, or with --exec the external tool run under a
// supervisor; stop stops that supervisor (killing any run still going) and must be called once
// the backend is no longer used.
func checkBackend(ctx context.Context, env *Env, o checkOptions, roots *x509.CertPool) (all checkAllFunc, stop func(), err error) {
	if o.Exec == "" {
		c, err := check.New(check.Options{
			Judge: o.Judge, JudgeStatus: o.JudgeStatus, JudgeKeyword: o.JudgeKeyword,
			Timeout: o.Timeout, RootCAs: roots, Log: env.Log,
		})
		if err != nil {
			return nil, nil, usageError("%v", err)
		}
		if err := c.Prepare(ctx); err != nil {
			return nil, nil, fmt.Errorf("judge not usable: %w", err)
		}
		env.Log.Debug("judge ready", "judge", o.Judge, "real_ip", c.RealIP())
		return func(ctx context.Context, ps []proxy.Proxy, emit func(check.Result)) error {
			c.CheckAll(ctx, ps, o.Concurrency, emit)
			return nil
		}, func() {}, nil
	}

	off, err := supervise.ParseLayers(o.Disable)
	if err != nil {
		return nil, nil, usageError("--disable-layers: %v", err)
	}
	sup, err := supervise.New(supervise.Config{Name: "check", Disable: off, Log: env.Log})
	if err != nil {
		return nil, nil, fmt.Errorf("supervisor: %w", err)
	}
	ec := &external.Checker{Template: o.Exec, Timeout: o.Timeout, Concurrency: o.Concurrency,
		Judge: o.Judge, PTY: o.ExecPTY, Runner: sup, Log: env.Log}
	if err := ec.Validate(); err != nil {
		return nil, nil, usageError("--exec: %v", err)
	}
	if err := sup.Start(ctx); err != nil {
		return nil, nil, fmt.Errorf("start supervisor: %w", err)
	}
	env.Log.Info("external checker", "template", o.Exec, "layers", layerNames(sup.Layers()))
	return func(ctx context.Context, ps []proxy.Proxy, emit func(check.Result)) error {
		var failed []error
		for start := 0; start < len(ps) && ctx.Err() == nil; start += o.Chunk {
			chunk := ps[start:min(start+o.Chunk, len(ps))]
			rs, err := ec.Results(ctx, chunk)
			if err != nil {
				if ctx.Err() != nil {
					break // interrupted: what was done is written, the rest is "not checked"
				}
				env.Log.Error("external checker failed; its chunk is not checked", "chunk", start/o.Chunk+1,
					"proxies", len(chunk), "err", err)
				failed = append(failed, fmt.Errorf("chunk %d (%d proxies): %w", start/o.Chunk+1, len(chunk), err))
				continue
			}
			for _, r := range rs {
				emit(r)
			}
		}
		return errors.Join(failed...)
	}, sup.Stop, nil
}
