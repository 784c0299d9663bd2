package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/proxyline/proxyline/internal/judge"
	"github.com/proxyline/proxyline/internal/serve"
)

// judgeShutdownGrace is how long `proxyline judge` lets requests in flight finish after the first
// signal; a second signal stops it at once.
const judgeShutdownGrace = 10 * time.Second

// judgeOptions are the flags of `proxyline judge`.
type judgeOptions struct {
	Listen  string // address to serve on; default 127.0.0.1:8080
	TLSCert string // PEM certificate file; with TLSKey, serve HTTPS
	TLSKey  string // PEM key file
}

// Validate reports the first invalid option.
func (o judgeOptions) Validate() error {
	if _, err := serve.Loopback(o.Listen); err != nil {
		return usageError("%v", err)
	}
	if (o.TLSCert == "") != (o.TLSKey == "") {
		return usageError("--tls-cert and --tls-key go together")
	}
	return nil
}

func judgeCommand() command {
	return command{
		Name:    "judge",
		Summary: "serve the proxy judge (what a checker fetches through each proxy)",
		Run:     runJudge,
	}
}

func runJudge(ctx context.Context, env *Env, args []string) error {
	var o judgeOptions
	fs := newFlagSet("judge", "[flags]",
		"Serve proxyline's judge: every GET or HEAD gets a JSON page with the caller's address, the\n"+
			"headers as received and the token sent as ?t= (or X-Proxyline-Token). Run it on your own\n"+
			"server and point `proxyline check --judge` at it. Stops gracefully on SIGINT/SIGTERM.")
	fs.StringVar(&o.Listen, "listen", "127.0.0.1:8080", "`address` to serve on (loopback by default; use :8080 for every interface)")
	fs.StringVar(&o.TLSCert, "tls-cert", "", "PEM certificate `file`; with --tls-key, serve HTTPS")
	fs.StringVar(&o.TLSKey, "tls-key", "", "PEM private key `file` for --tls-cert")
	if err := parseOptions(fs, env, args, &o); err != nil {
		return err
	}
	return serveJudge(ctx, env, o)
}

// serveJudge serves until ctx is canceled, then shuts down: stop accepting, let requests in
// flight finish for judgeShutdownGrace (or until env.Force), then close what is left.
func serveJudge(ctx context.Context, env *Env, o judgeOptions) error {
	var tlsConfig *tls.Config
	if o.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(o.TLSCert, o.TLSKey)
		if err != nil {
			return usageError("load --tls-cert %s / --tls-key %s: %v", o.TLSCert, o.TLSKey, err)
		}
		tlsConfig = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	}
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return fmt.Errorf("judge: %w", err)
	}
	scheme := "http"
	if tlsConfig != nil {
		ln = tls.NewListener(ln, tlsConfig)
		scheme = "https"
	}
	srv := &http.Server{
		Handler:           judge.Handler(env.Log),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       time.Minute,
		ErrorLog:          slog.NewLogLogger(env.Log.Handler(), slog.LevelDebug),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	addr := ln.Addr().String()
	if loop, _ := serve.Loopback(o.Listen); !loop {
		// The judge is the one server exempt from the listening rule (internal/serve): proxies on
		// the internet must reach it without credentials, and it holds nothing to protect: it
		// answers each caller with that caller's own request, and it has no state and no actions.
		env.Log.Info("judge open to every interface: it answers anyone, echoing only the caller's own request", "listen", o.Listen)
	}
	env.Log.Info("judge ready", "url", scheme+"://"+addr+"/", "addr", addr)
	select {
	case err := <-served:
		return fmt.Errorf("judge on %s: %w", addr, err)
	case <-ctx.Done():
	}
	env.Log.Info("judge stopping", "grace", judgeShutdownGrace)
	sctx, cancel := context.WithTimeout(context.Background(), judgeShutdownGrace)
	defer cancel()
	go func() {
		select {
		case <-env.Force:
			cancel()
		case <-sctx.Done():
		}
	}()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close() // grace over or forced: drop what is left
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("judge on %s: %w", addr, err)
	}
	env.Log.Info("judge stopped")
	return nil
}
