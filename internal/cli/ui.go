package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"time"

	"github.com/proxyline/proxyline/internal/console"
	"github.com/proxyline/proxyline/internal/queue"
	"github.com/proxyline/proxyline/internal/serve"
)

// uiOptions are the flags of proxyline ui.
type uiOptions struct {
	db    queue.DatabaseFlag // --database
	serve serve.Options      // --listen, --auth, --auth-file, --insecure-no-auth
}

// Validate checks the flags, including the listening rule (internal/serve): beyond loopback,
// credentials or --insecure-no-auth.
func (o *uiOptions) Validate() error {
	var errs []error
	if err := o.serve.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := o.db.Validate(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return usageError("%w", errors.Join(errs...))
	}
	return nil
}

func uiCommand() command {
	return command{
		Name:    "ui",
		Summary: "serve the web UI, JSON API, metrics and River UI for the queue (loopback by default)",
		Run:     runUI,
	}
}

// runUI serves the console until the first signal. Shutdown order: the HTTP server (requests in
// flight get 5 s), then the console (River UI's background work), then the store.
func runUI(ctx context.Context, env *Env, args []string) (err error) {
	o := &uiOptions{}
	flags := newFlagSet("ui", "[flags]",
		"Serves River UI for the queue's jobs: states, arguments (proxies with their credentials),\n"+
			"errors, retry and cancel. Loopback by default; any other --listen address needs\n"+
			"credentials (--auth-file FILE or --auth user:pass: HTTP basic authentication) or\n"+
			"--insecure-no-auth. The database must exist: ui never creates or migrates one.")
	o.db.Register(flags)
	o.serve.Register(flags, "127.0.0.1:8081")
	if err := parseOptions(flags, env, args, o); err != nil {
		return err
	}
	gate, err := o.serve.Gate(env.Log)
	if err != nil {
		if errors.Is(err, fs.ErrPermission) {
			return err // a file we may not read: a runtime error (exit 3)
		}
		return usageError("%w", err)
	}
	st, err := openStore(ctx, env, o.db, queue.Existing)
	if err != nil {
		return err
	}
	defer st.Close()
	con, err := console.New(console.Config{Store: st, Logger: env.Log})
	if err != nil {
		return err
	}
	if err := con.Start(ctx); err != nil {
		return err
	}
	defer func() { err = errors.Join(err, con.Stop(context.WithoutCancel(ctx))) }() // nothing to drain
	return serveHTTP(ctx, env, gate, con.Handler(), "the console", st.Name())
}

// serveHTTP serves h behind gate until ctx ends, then shuts down (requests in flight get 5 s).
func serveHTTP(ctx context.Context, env *Env, gate *serve.Gate, h http.Handler, what, database string) error {
	ln, err := gate.Listen()
	if err != nil {
		if errors.Is(err, serve.ErrRefused) {
			return usageError("%w", err)
		}
		return fmt.Errorf("ui: %w", err)
	}
	srv := &http.Server{Handler: gate.Wrap(h), ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(env.Log.Handler(), slog.LevelDebug)}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	env.Log.Info("serving "+what, "url", "http://"+ln.Addr().String()+"/", "database", database,
		"authentication", gate.Authenticated())
	fmt.Fprintf(env.Stdout, "http://%s/\n", ln.Addr())
	select {
	case err := <-done:
		return fmt.Errorf("ui: %w", err)
	case <-ctx.Done():
	}
	sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer scancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
	}
	<-done
	return nil
}
