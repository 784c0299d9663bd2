package cli

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/proxyline/proxyline/internal/lab"
)

// labOptions are the flags of `proxyline lab`: the lab's Config, one flag per count.
type labOptions struct {
	cfg lab.Config
}

// Validate reports the first invalid option.
func (o labOptions) Validate() error {
	if err := o.cfg.Validate(); err != nil {
		return usageError("%v", err)
	}
	return nil
}

func labCommand() command {
	return command{
		Name:    "lab",
		Summary: "run a loopback proxy farm with a judge, for tests, demos and benchmarks",
		Run:     runLab,
	}
}

func runLab(ctx context.Context, env *Env, args []string) error {
	var o labOptions
	fs := newFlagSet("lab", "[flags]",
		"Run a farm of proxies on 127.0.0.2 and up (HTTP, HTTPS, SOCKS4/4a/5; live, refusing,\n"+
			"hanging, slow, lying, altering) with a judge, until SIGINT/SIGTERM. Nothing leaves the\n"+
			"machine. With no count flags, 5 of each kind. Logs one line \"lab ready\" when serving.\n"+
			"Without --dir the candidates are printed to stdout; with it, the dir gets\n"+
			"candidates.txt, truth.jsonl, ca.pem and judge.txt (see docs/lab.md).")
	c := &o.cfg
	counts := []struct {
		p    *int
		name string
		help string
	}{
		{&c.HTTP, "http", "live elite HTTP proxies"},
		{&c.HTTPAuth, "http-auth", "live elite HTTP proxies with Basic credentials"},
		{&c.HTTPS, "https", "live elite HTTP proxies reached over TLS (lab CA)"},
		{&c.SOCKS4, "socks4", "live SOCKS4 proxies"},
		{&c.SOCKS4A, "socks4a", "live SOCKS4a proxies"},
		{&c.SOCKS5, "socks5", "live SOCKS5 proxies"},
		{&c.SOCKS5Auth, "socks5-auth", "live SOCKS5 proxies with user/password"},
		{&c.Transparent, "transparent", "live HTTP proxies that reveal the client (X-Forwarded-For)"},
		{&c.Anonymous, "anonymous", "live HTTP proxies that announce themselves (Via)"},
		{&c.Refused, "refused", "addresses where nothing listens"},
		{&c.Blackhole, "blackhole", "proxies that accept and never answer"},
		{&c.Slow, "slow", "live HTTP proxies that answer after --slow-delay"},
		{&c.Liar, "liar", "HTTP proxies answering with a forged judge page"},
		{&c.Alter, "alter", "HTTP proxies that alter what they forward"},
		{&c.Bare, "bare", "live HTTP/SOCKS5 proxies listed without scheme"},
	}
	for _, k := range counts {
		fs.IntVar(k.p, k.name, 0, "`number` of "+k.help)
	}
	fs.DurationVar(&c.SlowDelay, "slow-delay", lab.DefaultSlowDelay, "how long slow proxies wait before answering")
	fs.IntVar(&c.Sources, "sources", 0, "also serve the candidates as this `number` of proxy list sources in every format, plus hostile sources (URLs in sources.txt, sources.toml, hostile.toml of --dir)")
	fs.IntVar(&c.SlowSources, "slow-sources", 0, "`number` of those sources that stall after half their body (--slow-source-delay)")
	fs.DurationVar(&c.SlowSourceDelay, "slow-source-delay", lab.DefaultSlowSourceDelay, "how long slow sources stall")
	fs.BoolVar(&c.Backend, "backend", false, "also serve an origin server on 127.0.0.2 (large bodies, echo, slow streams) for the rotator; its URL goes to backend.txt")
	fs.StringVar(&c.Dir, "dir", "", "`directory` to write candidates.txt, truth.jsonl, ca.pem and judge.txt into")
	if err := parseOptions(fs, env, args, &o); err != nil {
		return err
	}
	c.Log = env.Log
	return serveLab(ctx, env, c)
}

// serveLab runs the lab until ctx is canceled. Stopping is quick (every connection is closed at
// once), so the second signal needs no special handling.
func serveLab(ctx context.Context, env *Env, cfg *lab.Config) error {
	start := time.Now()
	l, err := lab.Start(ctx, *cfg)
	if err != nil {
		return err
	}
	defer l.Stop(context.WithoutCancel(ctx)) // for the early returns; the Stop below reports its error
	if cfg.Dir == "" {
		for _, p := range l.Candidates() {
			if _, err := fmt.Fprintln(env.Stdout, p.String()); err != nil {
				return fmt.Errorf("write candidates: %w", err)
			}
		}
	}
	attrs := []any{"judge", l.JudgeURL(), "judge_tls", l.JudgeTLSURL(), "candidates", len(l.Candidates()),
		"took", time.Since(start).Round(time.Millisecond)}
	if cfg.Dir != "" {
		attrs = append(attrs, "dir", cfg.Dir)
	}
	if s := l.Sources(); s != nil {
		attrs = append(attrs, "sources", len(s.Infos()))
	}
	if u := l.BackendURL(); u != "" {
		attrs = append(attrs, "backend", u)
	}
	counts := l.Counts()
	for _, kind := range slices.Sorted(maps.Keys(counts)) {
		attrs = append(attrs, kind, counts[kind])
	}
	env.Log.Info("lab ready", attrs...)
	<-ctx.Done()
	env.Log.Info("lab stopping")
	if err := l.Stop(context.WithoutCancel(ctx)); err != nil {
		return err
	}
	env.Log.Info("lab stopped")
	return nil
}
