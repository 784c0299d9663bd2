package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/proxyline/proxyline/internal/lab"
	"github.com/proxyline/proxyline/internal/testdb"
	"github.com/proxyline/proxyline/internal/testkit"
)

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// labPassword matches the password of a lab proxy (lab:pw-N@): those must not be logged either.
var labPassword = regexp.MustCompile(`pw-[0-9]+`)

// TestSecretsNeverShown runs every queue command, each way it can be given a database, with a
// database password in the URL's user:pass@ and in its ?password= and &sslpassword= parameters,
// each password unique, and greps everything each process wrote (stdout and stderr, text and
// JSON logs, at debug level) for them: status text and JSON, the worker's logs, export, ui's
// logs and API, enqueue, and the errors of a connection that fails and of a database string that
// is not a URL. No password may appear; nor may the lab proxies' passwords in any log.
func TestSecretsNeverShown(t *testing.T) {
	t.Parallel()
	schema := testdb.PostgresSchema(t)
	l, err := lab.Start(context.Background(), lab.Config{HTTP: 2, HTTPAuth: 2, SOCKS5Auth: 2, Refused: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Stop(context.Background()); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	var list strings.Builder
	for _, p := range l.Candidates() {
		list.WriteString(p.String() + "\n")
	}
	listFile := writeTestFile(t, t.TempDir(), "list.txt", list.String(), 0o600)

	pw := map[string]string{}
	for _, k := range []string{"userinfo", "param", "sslparam", "badport", "badparam", "keyvalue"} {
		pw[k] = "Zq" + randomHex(8)
	}
	good := []string{
		"postgres://postgres:" + pw["userinfo"] + "@127.0.0.1:5432/test?sslmode=disable&search_path=" + schema,
		"postgres://postgres@127.0.0.1:5432/test?sslmode=disable&password=" + pw["param"] + "&search_path=" + schema,
		"postgresql://postgres@127.0.0.1:5432/test?search_path=" + schema + "&sslpassword=" + pw["sslparam"] + "&sslmode=disable",
	}
	bad := []string{
		"postgres://postgres:" + pw["badport"] + "@127.0.0.1:1/test?sslmode=disable",
		"postgres://postgres@127.0.0.1:1/test?password=" + pw["badparam"] + "&sslmode=disable",
		"host=127.0.0.1 user=postgres password=" + pw["keyvalue"] + " dbname=test",
	}
	var procs []*mainProc
	run := func(o procOpts, args ...string) (*mainProc, int) {
		p := startMain(t, o, args...)
		procs = append(procs, p)
		return p, p.wait(t, 2*time.Minute)
	}
	for i, db := range good {
		dbArgs := []string{"--database", db}
		o := procOpts{}
		if i == 1 { // the environment variable, and JSON logs
			dbArgs, o = nil, procOpts{env: []string{"PROXYLINE_DATABASE=" + db, "PROXYLINE_LOG_FORMAT=json"}}
		}
		if _, code := run(o, append(append([]string{"enqueue"}, dbArgs...), "--chunk", "3", "--judge", l.JudgeURL(), "-t", "5s", listFile)...); code != 0 {
			t.Fatalf("enqueue on URL %d: exit %d", i, code)
		}
		w := startMain(t, o, append([]string{"worker", "--concurrency", "2"}, dbArgs...)...)
		procs = append(procs, w)
		if _, code := run(o, append([]string{"status", "--wait", "90s"}, dbArgs...)...); code != 0 {
			t.Fatalf("status --wait on URL %d: exit %d", i, code)
		}
		for _, args := range [][]string{{"status"}, {"status", "--json"}, {"export"}, {"export", "--format", "jsonl", "--all"}} {
			if _, code := run(o, append(args, dbArgs...)...); code != 0 {
				t.Errorf("%v on URL %d: exit %d", args, i, code)
			}
		}
		ui := startMain(t, o, append([]string{"ui", "--listen", "127.0.0.1:0"}, dbArgs...)...)
		procs = append(procs, ui)
		testkit.WaitFor(t, time.Minute, "ui to print its URL", func() bool { return strings.HasPrefix(ui.stdout.String(), "http://") })
		ui.signal(t, syscall.SIGTERM)
		w.signal(t, syscall.SIGTERM)
		if code := ui.wait(t, time.Minute); code != 0 {
			t.Errorf("ui on URL %d: exit %d", i, code)
		}
		if code := w.wait(t, time.Minute); code != 0 {
			t.Errorf("worker on URL %d: exit %d", i, code)
		}
	}
	for i, db := range bad {
		for _, args := range [][]string{{"status"}, {"status", "--json"}, {"export"}, {"worker"}, {"ui"},
			{"enqueue", "--judge", l.JudgeURL(), listFile}} {
			p, code := run(procOpts{}, append([]string{args[0], "--database", db}, args[1:]...)...)
			if code != ExitUsage && code != ExitError {
				t.Errorf("%v on bad database %d: exit %d, want an error", args, i, code)
			}
			if !strings.Contains(p.stderr.String(), "127.0.0.1") {
				t.Errorf("%v on bad database %d: the error does not name the database:\n%s", args, i, p.stderr.String())
			}
		}
	}
	for _, p := range procs {
		out, errOut := p.stdout.String(), p.stderr.String()
		for k, secret := range pw {
			if strings.Contains(out, secret) || strings.Contains(errOut, secret) {
				t.Errorf("proxyline %s shows the %s password:\nstdout:\n%s\nstderr:\n%s", p.name, k, out, errOut)
			}
		}
		if m := labPassword.FindString(errOut); m != "" {
			t.Errorf("proxyline %s logs a proxy password (%s):\n%s", p.name, m, errOut)
		}
	}
	// The workers did their work (the grep is about real output) and export wrote credentials,
	// which are its product.
	var exported bool
	for _, p := range procs {
		if strings.HasPrefix(p.name, "export") && labPassword.MatchString(p.stdout.String()) {
			exported = true
		}
	}
	if !exported {
		t.Error("export wrote no proxy with credentials: the run did not check anything")
	}
}

// TestBadLinesMasked: a bad line of a list is reported by its number, without the password it
// holds, by check and by enqueue.
func TestBadLinesMasked(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	list := writeTestFile(t, dir, "list.txt", "socks5://u:Zq9pw@127.0.0.3:1 extra\nhttp://u:Zq9pw@127.0.0.3:99999\n", 0o600)
	for _, args := range [][]string{
		{"check", "-f", list, "--judge", "http://127.0.0.2:1/"},
		{"enqueue", "--database", dir + "/q.db", "--judge", "http://127.0.0.2:1/", list},
	} {
		var stderr testkit.Buffer
		env := &Env{Stdout: &testkit.Buffer{}, Stderr: &stderr}
		code := run(context.Background(), env, args)
		if code != ExitUsage || !strings.Contains(stderr.String(), list+":1:") || !strings.Contains(stderr.String(), list+":2:") {
			t.Errorf("%s: exit %d, stderr %q", args[0], code, stderr.String())
		}
		if strings.Contains(stderr.String(), "Zq9pw") {
			t.Errorf("%s shows the password of a bad line:\n%s", args[0], stderr.String())
		}
	}
}
