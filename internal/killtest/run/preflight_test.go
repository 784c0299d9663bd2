package run

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/proxyline/proxyline/internal/killtest/scenario"
)

func TestShellPrograms(t *testing.T) {
	t.Parallel()
	cases := []struct{ line, want string }{
		{`exec proxyline check -f x`, "proxyline"},
		{`mkfifo in ack && exec bash "$D/cycler.sh" fd in ack`, "mkfifo,bash"},
		{`trap 'kill 0' TERM; sleep 600 & echo up; wait`, "sleep"},
		{`f() { helper; }; f; test -s out.txt && echo 1 || echo 0`, "helper"},
		{`$PROG --x; $(which y); exec "quoted"`, "which"},
		{`X=1 env -u Y sh -c 'inner'`, "env"},
		{`command -v foo >/dev/null || exit 1`, ""},
	}
	for _, c := range cases {
		got, err := shellPrograms(c.line)
		if err != nil {
			t.Fatalf("%q: %v", c.line, err)
		}
		if strings.Join(got, ",") != c.want {
			t.Errorf("shellPrograms(%q) = %v, want %q", c.line, got, c.want)
		}
	}
	if _, err := shellPrograms(`echo "unclosed`); err == nil {
		t.Error("a bad shell line parsed")
	}
}

func TestScriptOf(t *testing.T) {
	t.Parallel()
	cases := []struct {
		argv []string
		i    int
		want string
	}{
		{[]string{"sh", "x.sh", "a"}, 1, "x.sh"},
		{[]string{"/usr/bin/python3", "-u", "app.py", "worker"}, 2, "app.py"},
		{[]string{"python3", "-m", "mod"}, 0, ""},
		{[]string{"sh", "-c", "echo"}, 0, ""},
		{[]string{"bash", "--", "s.sh"}, 2, "s.sh"},
		{[]string{"proxyline", "x.sh"}, 0, ""},
	}
	for _, c := range cases {
		if i, got := scriptOf(c.argv); i != c.i || got != c.want {
			t.Errorf("scriptOf(%v) = %d %q, want %d %q", c.argv, i, got, c.i, c.want)
		}
	}
}

// TestPreflight: every missing program, script and directory is found, with its line; nothing
// runs (the commands would create a marker file).
func TestPreflight(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bin, "kt-only-in-bin"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(dir, "ran")
	yaml := fmt.Sprintf(`name: pre
needs: [kt-only-in-bin, kt-missing-need]
setup:
  - sh: touch %[1]s; kt-missing-in-setup
components:
  - name: a
    command: [kt-only-in-bin, --x]
    dir: %[2]s/nodir
  - name: b
    command: [sh, %[2]s/missing.sh]
  - name: c
    sh: touch %[1]s && exec kt-missing-in-sh "${TMP}/x"
  - name: d
    command: [sh, "${TMP}/made-at-run-time.sh"]
    dir: ${TMP}/sub
workload:
  steps:
    - command: [%[2]s/bin/kt-not-there]
probes:
  p:
    command: {sh: "kt-missing-probe | wc -l"}
`, marker, dir)
	sc, err := scenario.Parse(filepath.Join(dir, "pre.yaml"), []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	errs := Preflight(sc, Options{Bin: bin})
	var got []string
	for _, e := range errs {
		got = append(got, e.Error())
	}
	all := strings.Join(got, "\n")
	for _, want := range []string{
		"pre.yaml:2: needs[1]: program \"kt-missing-need\" not found in PATH",
		"pre.yaml:4: setup[0].sh: program \"kt-missing-in-setup\" not found",
		"pre.yaml:8: components[0].dir: working directory " + dir + "/nodir does not exist",
		"pre.yaml:10: components[1].command[1]: script " + dir + "/missing.sh of sh does not exist",
		"pre.yaml:12: components[2].sh: program \"kt-missing-in-sh\" not found",
		"pre.yaml:18: workload.steps[0].command[0]: program " + dir + "/bin/kt-not-there:",
		"probes.p.command.sh: program \"kt-missing-probe\" not found",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("preflight lacks %q\n%s", want, all)
		}
	}
	if len(errs) != 7 {
		t.Errorf("%d problems, want 7:\n%s", len(errs), all)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("preflight ran a command")
	}
	if errs := Preflight(sc, Options{}); !strings.Contains(fmt.Sprint(errs), `needs[0]: program "kt-only-in-bin" not found`) {
		t.Errorf("without --bin: %v", errs)
	}
}

func FuzzShellPrograms(f *testing.F) {
	f.Add(`exec proxyline check -f x`)
	f.Add(`f() { helper; }; f; test -s out.txt && echo 1 || echo 0`)
	f.Add(`command -v foo >/dev/null || exec "$X" $(which y)`)
	f.Fuzz(func(t *testing.T, line string) {
		progs, err := shellPrograms(line)
		if err != nil {
			return
		}
		for _, p := range progs {
			if p == "" || shellBuiltins[p] {
				t.Fatalf("shellPrograms(%q) gave %q", line, p)
			}
		}
	})
}
