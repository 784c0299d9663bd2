package scenario

import (
	"strings"
	"testing"
	"time"

	"github.com/proxyline/proxyline/internal/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }

const good = `
name: good
description: a worker and a fault
needs: [sh]
vars:
  DB: ${TMP}/q.db
  N: "3"
timeout: 20s
components:
  - name: worker
    command: [sh, -c, "echo ready; exec sleep 30"]
    env: {DB: "${DB}"}
    ready: {log: "^ready$", timeout: 2s}
    stop: {signal: SIGTERM, deadline: 1s, exit: [0, SIGTERM]}
workload:
  cycles: ${N}
  steps:
    - sh: echo hi > ${TMP}/x
faults:
  - signal: KILL
    target: {component: worker, tree: true}
    when: {process: "sleep"}
    repeat: 2
    restart: true
probes:
  jobs:
    sql: {driver: sqlite, dsn: "${DB}", query: "select count(*) from t"}
wait:
  - {probe: jobs, at_least: 1, timeout: 5s}
expect:
  zombies: false
  orphans: {grace: 3s, allow: ["^redis-server "]}
  probes:
    - {probe: jobs, equals: 3, when: after}
  history:
    submitted: {file: "${TMP}/ids"}
    results: {jsonl: "${TMP}/out.jsonl"}
`

func TestParseGood(t *testing.T) {
	t.Parallel()
	s, err := Parse("good.yaml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	inst, err := s.Instantiate(Builtins{TMP: "/tmp/run1", Seed: 7, Run: "r1"})
	if err != nil {
		t.Fatal(err)
	}
	if got := inst.Components[0].Env["DB"]; got != "/tmp/run1/q.db" {
		t.Errorf("env DB = %q", got)
	}
	if inst.Workload.Cycles != 3 {
		t.Errorf("cycles = %d, want 3 (expanded from a var)", inst.Workload.Cycles)
	}
	if inst.Expect.Zombies == nil || inst.Expect.Zombies.Enabled {
		t.Errorf("zombies: false not honoured: %+v", inst.Expect.Zombies)
	}
	if o := inst.Expect.Orphans; o == nil || !o.Enabled || o.Grace.D() != 3*time.Second || len(o.Allow) != 1 || o.Allow[0] != "^redis-server " {
		t.Errorf("orphans = %+v", o)
	}
	if inst.Components[0].Ready.Timeout.D() != 2*time.Second {
		t.Errorf("ready timeout = %v", inst.Components[0].Ready.Timeout.D())
	}
	if !inst.Cycles() {
		t.Error("Cycles() = false")
	}
	if s.Line("faults[0].when.process") != 22 {
		t.Errorf("line of faults[0].when.process = %d, want 22", s.Line("faults[0].when.process"))
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	cases := []struct{ name, yaml, want string }{
		{"unknown field", "name: x\ncomponents:\n  - name: a\n    comand: [x]\n", "bad.yaml:4: components[0].comand: unknown field"},
		{"no command", "name: x\ncomponents:\n  - name: a\n", "bad.yaml:3: components[0]: want command"},
		{"bad duration", "name: x\ncomponents:\n  - name: a\n    sh: x\n    ready: {timeout: 5}\n", "bad.yaml:5: components[0].ready.timeout: want a duration"},
		{"bad signal", "name: x\ncomponents:\n  - {name: a, sh: x}\nfaults:\n  - signal: SIGFOO\n    target: {component: a}\n", "bad.yaml:5: faults[0].signal: unknown signal"},
		{"unknown component", "name: x\ncomponents:\n  - {name: a, sh: x}\nfaults:\n  - signal: KILL\n    target: {component: b}\n", "bad.yaml:6: faults[0].target.component: no component named \"b\""},
		{"not loopback", "name: x\ncomponents:\n  - name: a\n    sh: x\n    ready: {tcp: \"10.0.0.1:80\"}\n", "not a loopback address"},
		{"unknown var", "name: x\ncomponents:\n  - {name: a, sh: \"${NOPE_KILLTEST}\"}\n", "bad.yaml:3: components[0].sh: unknown variable ${NOPE_KILLTEST}"},
		{"wrong type", "name: x\ncomponents: {a: 1}\n", "bad.yaml:2: components: want a list"},
		{"probe kind", "name: x\ncomponents:\n  - {name: a, sh: x}\nprobes:\n  p: {}\n", "probes.p: want exactly one"},
		{"missing probe", "name: x\ncomponents:\n  - {name: a, sh: x}\nwait:\n  - {probe: q, equals: 1}\n", "wait[0].probe: no probe named"},
		{"empty", "", "empty scenario"},
		{"dup component", "name: x\ncomponents:\n  - {name: a, sh: x}\n  - {name: a, sh: y}\n", "bad.yaml:4: components[1].name: duplicate"},
		{"bad exit", "name: x\ncomponents:\n  - {name: a, sh: x, stop: {exit: [300]}}\n", "components[0].stop.exit[0]: exit code 300"},
		{"two triggers", "name: x\ncomponents:\n  - {name: a, sh: x}\nfaults:\n  - {signal: KILL, target: {component: a}, when: {after: 1s, process: x}}\n", "faults[0].when.process: after, process"},
		{"bad allow regex", "name: x\ncomponents:\n  - {name: a, sh: x}\nexpect:\n  orphans: {allow: [\"(\"]}\n", "expect.orphans.allow[0]: want a regex"},
		{"history source", "name: x\ncomponents:\n  - {name: a, sh: x}\nexpect:\n  history: {submitted: {}, results: {file: f}}\n", "expect.history.submitted: want exactly one"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse("bad.yaml", []byte(c.yaml))
			if err == nil {
				t.Fatalf("no error, want %q", c.want)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q\ndoes not contain %q", err, c.want)
			}
		})
	}
}

// TestErrorLines: every error names the line of the bad node itself, not the start of the block
// that holds it (yaml.v3's syntax errors name the enclosing block; see syntaxError).
func TestErrorLines(t *testing.T) {
	t.Parallel()
	cases := []struct{ name, yaml, want string }{
		{"indentation: a key one column left of its siblings",
			"name: x\ncomponents:\n  - name: a\n    sh: x\n    ready:\n      log: a\n     timeout: 2s\n",
			"bad.yaml:7: YAML syntax: did not find expected key (after components[0].ready.log)"},
		{"key without a colon",
			"name: x\ncomponents:\n  - name: a\n    sh: x\n    ready:\n      log: a\n      timeout 2s\n      file: b\n",
			"bad.yaml:7: YAML syntax: could not find expected ':'"},
		{"unclosed flow list",
			"name: x\ncomponents:\n  - name: a\n    sh: x\n    env:\n      A: b\n      B: [1\n    dir: c\n",
			"bad.yaml:7: YAML syntax: did not find expected ',' or ']'"},
		{"tab in indentation",
			"name: x\ncomponents:\n  - name: a\n    sh: x\n\tdir: c\n",
			"bad.yaml:5: YAML syntax: found a tab character"},
		{"bad list item deep in a block",
			"name: x\ncomponents:\n  - name: a\n    sh: x\n    stop:\n      deadline: 2s\n      exit:\n        - 0\n        - 300\n",
			"bad.yaml:9: components[0].stop.exit[1]: exit code 300 out of range"},
		{"variable expanding to a bad number",
			"name: x\nvars: {N: abc}\nworkload:\n  cycles: ${N}\n  steps:\n    - sh: x\n",
			"bad.yaml:4: workload.cycles: want a int, got \"abc\""},
		{"variable expanding to a bad duration",
			"name: x\nvars: {T: soon}\ncomponents:\n  - name: a\n    sh: x\n    ready:\n      timeout: ${T}\n",
			"bad.yaml:7: components[0].ready.timeout: want a duration like 2s"},
		{"unknown variable in a list",
			"name: x\ncomponents:\n  - name: a\n    command:\n      - prog\n      - ${NOPE_KILLTEST_X}\n",
			"bad.yaml:6: components[0].command[1]: unknown variable ${NOPE_KILLTEST_X}"},
		{"conflicting triggers: the second one",
			"name: x\ncomponents:\n  - name: a\n    sh: x\nfaults:\n  - signal: KILL\n    target:\n      component: a\n    when:\n      after: 1s\n      process: y\n",
			"bad.yaml:11: faults[0].when.process: after, process, log and window exclude each other"},
		{"conflicting targets: the second one",
			"name: x\ncomponents:\n  - name: a\n    sh: x\nfaults:\n  - signal: KILL\n    target:\n      component: a\n      tree: true\n      random: true\n",
			"bad.yaml:10: faults[0].target.random: tree, match and random exclude each other"},
		{"background setup step",
			"name: x\nsetup:\n  - sh: x\n    background: true\ncomponents:\n  - {name: a, sh: x}\n",
			"bad.yaml:4: setup[0].background: not allowed in setup"},
		{"bad files glob",
			"name: x\ncomponents:\n  - {name: a, sh: x}\nexpect:\n  files:\n    ignore:\n      - ok\n      - \"[\"\n",
			"bad.yaml:8: expect.files.ignore[1]: bad glob"},
		{"unknown field in setup",
			"name: x\nsetup:\n  - sh: x\n    tiemout: 1s\ncomponents:\n  - {name: a, sh: x}\n",
			"bad.yaml:4: setup[0].tiemout: unknown field"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse("bad.yaml", []byte(c.yaml))
			if err == nil {
				t.Fatalf("no error, want %q", c.want)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q\ndoes not contain %q", err, c.want)
			}
		})
	}
}

func TestEnvironment(t *testing.T) {
	t.Setenv("KT_ENV_A", "a")
	t.Setenv("KT_ENV_B", "b")
	s, err := Parse("env.yaml", []byte(`
name: env
vars:
  DIR: ${KT_ENV_A}/x
  OWN: ${TMP}
components:
  - name: a
    sh: echo ${DIR} ${OWN} ${KT_ENV_B} ${PORT1} ${SEED}
`))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(s.Environment(), ","); got != "KT_ENV_A,KT_ENV_B" {
		t.Errorf("Environment() = %q, want KT_ENV_A,KT_ENV_B", got)
	}
}

func TestSetupAndFiles(t *testing.T) {
	t.Parallel()
	s, err := Parse("s.yaml", []byte(`
name: s
setup:
  - name: clear
    command: [redis-cli, del, "k:${RUN}"]
    timeout: 5s
  - sh: mkdir -p ${TMP}/data
components:
  - {name: a, sh: x}
expect:
  files:
    dirs: ["${TMP}", extra]
    ignore: ["*.db", "lab/**"]
`))
	if err != nil {
		t.Fatal(err)
	}
	inst, err := s.Instantiate(Builtins{TMP: "/tmp/r", Run: "id1", Ports: []int{1, 2, 3, 4}})
	if err != nil {
		t.Fatal(err)
	}
	if len(inst.Setup) != 2 || inst.Setup[0].Command[2] != "k:id1" || inst.Setup[0].Timeout.D() != 5*time.Second || inst.Setup[1].Sh != "mkdir -p /tmp/r/data" {
		t.Errorf("setup %+v", inst.Setup)
	}
	f := inst.Expect.Files
	if f == nil || !f.Enabled || len(f.Dirs) != 2 || f.Dirs[0] != "/tmp/r" || len(f.Ignore) != 2 {
		t.Errorf("files %+v", f)
	}
	s, err = Parse("t.yaml", []byte("name: t\ncomponents: [{name: a, sh: x}]\nexpect: {files: true}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if f := s.Expect.Files; f == nil || !f.Enabled {
		t.Errorf("files: true gives %+v", f)
	}
}

func TestParseExits(t *testing.T) {
	t.Parallel()
	got, err := ParseExits([]string{"0", "SIGTERM", "kill"})
	if err != nil || len(got) != 3 || got[1].Signal == 0 || got[2].String() != "killed by SIGKILL" {
		t.Fatalf("ParseExits = %v, %v", got, err)
	}
	if def, _ := ParseExits(nil); len(def) != 1 || def[0].Code != 0 {
		t.Fatalf("default exits = %v", def)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(good))
	f.Add([]byte("name: x\ncomponents:\n  - {name: a, sh: x}\n"))
	f.Add([]byte("name: ${X}\nvars: {X: y}\ncomponents: [{name: a, command: [b]}]\nexpect: {ports: {ports: [1]}}"))
	f.Add([]byte("&a [*a]"))
	f.Add([]byte("name: x\ncomponents:\n  - name: a\n    sh: x\n    ready:\n      log: a\n     timeout: 2s\n"))
	f.Add([]byte("name: x\nsetup: [{sh: x}]\ncomponents: [{name: a, sh: x}]\nexpect: {files: {dirs: [d], ignore: [\"*.x\"]}}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse("fuzz.yaml", data)
		if err != nil {
			return
		}
		if _, err := s.Instantiate(Builtins{TMP: "/t", Seed: 1, Ports: []int{1, 2, 3, 4}}); err != nil {
			t.Fatalf("parsed scenario fails to instantiate: %v", err)
		}
	})
}

func TestPortsAndQuotedNumbers(t *testing.T) {
	t.Parallel()
	s, err := Parse("p.yaml", []byte(`
name: p
vars: {ADDR: "127.0.0.1:${PORT2}"}
components:
  - name: a
    command: [srv, "${ADDR}", "${PORT1}"]
    ready: {tcp: "${ADDR}"}
expect:
  ports:
    ports: ["${PORT1}", "${PORT2}"]
`))
	if err != nil {
		t.Fatal(err)
	}
	inst, err := s.Instantiate(Builtins{TMP: "/t", Ports: []int{1111, 2222, 3333, 4444}})
	if err != nil {
		t.Fatal(err)
	}
	if got := inst.Expect.Ports.Ports; len(got) != 2 || got[0] != 1111 || got[1] != 2222 {
		t.Errorf("ports = %v", got)
	}
	if got := inst.Components[0].Command; got[1] != "127.0.0.1:2222" || got[2] != "1111" {
		t.Errorf("command = %v", got)
	}
	if !inst.Expect.Ports.Enabled {
		t.Error("ports check given as a mapping is not enabled")
	}
}
