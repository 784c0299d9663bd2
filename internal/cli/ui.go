package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/proxyline/proxyline/internal/queue"
)

// uiOptions are the flags of proxyline ui.
type uiOptions struct {
	database string
	listen   string
}

// Validate checks the flags.
func (o *uiOptions) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(o.listen); err != nil {
		errs = append(errs, fmt.Errorf("--listen %q: %w", o.listen, err))
	}
	if err := (queue.Config{Database: o.database}).Validate(); err != nil {
		errs = append(errs, fmt.Errorf("--database: %w", err))
	}
	if len(errs) > 0 {
		return usageError("%w", errors.Join(errs...))
	}
	return nil
}

func uiCommand() command {
	return command{
		Name:    "ui",
		Summary: "serve River's web UI for the queue (loopback by default)",
		Run:     runUI,
	}
}

func runUI(ctx context.Context, env *Env, args []string) error {
	o := &uiOptions{}
	fs := newFlagSet("ui", "[flags]",
		"Serves River UI for the queue's jobs: states, arguments, errors, retry and cancel. It has no\n"+
			"authentication: keep it on loopback or behind an authenticating proxy.")
	databaseFlag(fs, &o.database)
	fs.StringVar(&o.listen, "listen", "127.0.0.1:8081", "address to serve on")
	if err := parseOptions(fs, env, args, o); err != nil {
		return err
	}
	st, err := queue.Open(ctx, queue.Config{Database: o.database, Logger: env.Log})
	if err != nil {
		return err
	}
	defer st.Close()
	uiCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	h, err := st.UI(uiCtx, "")
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fmt.Errorf("ui: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	env.Log.Info("serving River UI", "url", "http://"+ln.Addr().String()+"/", "database", st.Name())
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
