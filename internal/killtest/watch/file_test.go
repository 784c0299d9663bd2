package watch

import (
	"errors"
	"strings"
	"testing"

	"github.com/proxyline/proxyline/internal/killtest/scenario"
)

// Every problem of a watch file is reported at its file:line: field.
func TestParseErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, text string
		want       []string
	}{
		{"empty", "", []string{"w.yaml:1: empty file"}},
		{"syntax", "name: x\nsystem:\n  roots: [a\n", []string{"w.yaml:", "YAML syntax"}},
		{"unknown field", "name: x\nprobes: {q: {command: {sh: 'echo 1'}}}\nintervall: 1s\n", []string{"w.yaml:3: intervall: unknown field"}},
		{"bad duration", "name: x\ninterval: soon\nprobes: {q: {command: {sh: 'echo 1'}}}\n", []string{"w.yaml:2: interval: want a duration"}},
		{"short interval", "name: x\ninterval: 1ms\nprobes: {q: {command: {sh: 'echo 1'}}}\n", []string{"w.yaml:2: interval: 1ms is below"}},
		{"nothing to watch", "name: x\n", []string{"system: nothing to watch"}},
		{"bad name", "name: 'a b'\nprobes: {q: {command: {sh: 'echo 1'}}}\n", []string{"w.yaml:1: name:"}},
		{"cookie without roots", "name: x\nsystem:\n  cookie: A=b\n", []string{"system.roots: required with cookie"}},
		{"bad cookie", "name: x\nsystem:\n  cookie: '1A'\n  roots: [x]\n", []string{"w.yaml:3: system.cookie: want NAME"}},
		{"bad cgroup", "name: x\nsystem:\n  cgroups: [system.slice]\n  roots: [x]\n", []string{"w.yaml:3: system.cgroups[0]: want a clean absolute"}},
		{"root cgroup", "name: x\nsystem:\n  cgroups: [/]\n  roots: [x]\n", []string{"system.cgroups[0]: the root cgroup"}},
		{"bad regex", "name: x\nsystem:\n  rules:\n    - match: 'a('\n      parent: b\n", []string{"w.yaml:4: system.rules[0].match: bad regex"}},
		{"rule without parent", "name: x\nsystem:\n  rules:\n    - match: a\n", []string{"system.rules[0].parent: required"}},
		{"process without growth", "name: x\nprocesses:\n  - name: w\n    match: w\n", []string{"w.yaml:3: processes[0]: want fds or rss"}},
		{"growth without max", "name: x\nprocesses:\n  - name: w\n    match: w\n    fds: {window: 1m}\n", []string{"w.yaml:5: processes[0].fds.max: required"}},
		{"duplicate process", "name: x\nprocesses:\n  - {name: w, match: w, fds: {max: 1}}\n  - {name: w, match: v, fds: {max: 1}}\n", []string{"w.yaml:4: processes[1].name: duplicate"}},
		{"bad probe", "name: x\nprobes:\n  q:\n    redis: {op: get, keys: [a]}\n", []string{"w.yaml:4: probes.q.redis.op: want llen"}},
		{"redis off loopback", "name: x\nprobes:\n  q:\n    redis: {addr: '10.0.0.1:6379', op: llen, keys: [a]}\n", []string{"probes.q.redis.addr: 10.0.0.1 is not a loopback"}},
		{"limit of no probe", "name: x\nprobes: {q: {command: {sh: 'echo 1'}}}\nlimits:\n  - {probe: r, at_most: 1}\n", []string{"w.yaml:4: limits[0].probe: no probe named"}},
		{"limit without comparison", "name: x\nprobes: {q: {command: {sh: 'echo 1'}}}\nlimits:\n  - {probe: q}\n", []string{"w.yaml:4: limits[0]: want equals"}},
		{"unknown variable", "name: x\nprobes: {q: {command: {sh: 'echo ${NO_SUCH_VAR_WATCH}'}}}\n", []string{"unknown variable ${NO_SUCH_VAR_WATCH}"}},
	} {
		_, err := Parse("w.yaml", []byte(tc.text))
		if err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		var fe *scenario.FieldError
		if !errors.As(err, &fe) {
			t.Errorf("%s: %T is not a FieldError: %v", tc.name, err, err)
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not contain %q", tc.name, err, w)
			}
		}
	}
}

// The files in testdata and the example in docs parse.
func TestParseGood(t *testing.T) {
	t.Parallel()
	f, err := Parse("w.yaml", []byte(`
name: proxyline
interval: 30s
system:
  cookie: PROXYLINE_TASK_COOKIE
  cgroups: [/system.slice/proxyline.service]
  roots: ['^/usr/local/bin/proxyline (run|worker)']
  rules:
    - {name: mubeng, match: '^mubeng .*--check', parent: 'celery'}
orphans: {after: 10s, allow: ['^redis-server ']}
processes:
  - {name: run, match: '^/usr/local/bin/proxyline run', fds: {window: 30m, max: 200}, rss: {window: 1h, max: 256}}
probes:
  stuck:
    sql: {driver: sqlite, dsn: /var/lib/proxyline/proxyline.db, query: "select count(*) from river_job where state = 'running'"}
limits:
  - {probe: stuck, at_most: 0}
`))
	if err != nil {
		t.Fatal(err)
	}
	if f.IntervalOr().String() != "30s" || f.Orphans.After.D().String() != "10s" || f.Processes[0].RSS.Max != 256 {
		t.Errorf("decoded %+v", f)
	}
}

// The parser never panics, and every error it returns names the file and a line.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"name: x\nsystem: {cookie: A, roots: [a]}\n",
		"name: x\nprocesses: [{name: w, match: w, fds: {window: 1s, max: 3}}]\n",
		"name: x\nprobes: {q: {redis: {op: llen, keys: [a]}}}\nlimits: [{probe: q, at_most: 1}]\n",
		"name: x\nsystem:\n  rules:\n    - {match: a, parent: b}\n",
		"name: [\n",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_, err := parse("fuzz.yaml", []byte(s), func(string) (string, bool) { return "v", true })
		if err == nil {
			return
		}
		var fe *scenario.FieldError
		if !errors.As(err, &fe) {
			t.Fatalf("%T is not a FieldError: %v", err, err)
		}
		if !strings.HasPrefix(err.Error(), "fuzz.yaml:") {
			t.Fatalf("error without its file: %v", err)
		}
	})
}

func TestParseCommand(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in    string
		shell bool
		want  string // argv joined by |, or "" for an error
	}{
		{"notify-send 'orphan found' --urgency=critical", false, "notify-send|orphan found|--urgency=critical"},
		{`mail -s "watch: proxyline" ops@example.com`, false, "mail|-s|watch: proxyline|ops@example.com"},
		{`a\ b c`, false, "a b|c"},
		{"cat | mail ops", false, ""},
		{"mail $OPS", false, ""},
		{"mail ops > /tmp/x", false, ""},
		{"a; b", false, ""},
		{"X=1 mail", false, ""},
		{"mail *.txt", false, ""},
		{"~/bin/alert", false, ""},
		{"$(id)", false, ""},
		{"  ", false, ""},
		{"cat | mail ops", true, "/bin/sh|-c|cat | mail ops"},
	} {
		argv, err := ParseCommand(tc.in, tc.shell)
		got := strings.Join(argv, "|")
		if err != nil {
			got = ""
		}
		if got != tc.want {
			t.Errorf("ParseCommand(%q, %v) = %q, %v; want %q", tc.in, tc.shell, got, err, tc.want)
		}
	}
}

// The watch file shipped for proxyline's systemd timer is a valid watch file.
func TestShippedWatchFile(t *testing.T) {
	t.Parallel()
	f, err := LoadFile("../../../deploy/systemd/watch.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{File: f}); err != nil {
		t.Fatal(err)
	}
}
