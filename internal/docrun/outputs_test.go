package docrun_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// output is what a command's output must be, where the docs show it.
type output struct {
	// shown, from 1, names the ```json block after the command's block that shows its output: the
	// output must be JSON of the same shape (the same keys at every level, values of the same
	// types, arrays with entries where the docs show some).
	shown int
	// line, if set, must match every line of the output; some, if set, at least one.
	line, some *regexp.Regexp
}

// proxyURL is a proxy as the pool gives it, with credentials or not.
var proxyURL = regexp.MustCompile(`^(http|https|socks4|socks4a|socks5)://([^:@/]+:[^@/]+@)?127\.[0-9.]+:[0-9]+$`)

// outputs lists, by "file: command", the commands whose output is checked. Besides, every command
// that calls the console's API (callsAPI) must not answer an error or feed jq what it cannot read.
var outputs = map[string]output{
	"docs/api.md: curl -s 'http://127.0.0.1:8081/api/v1/proxies?protocol=socks5&max_latency=500ms&limit=1'":                                   {shown: 1},
	"docs/api.md: curl -s 'http://127.0.0.1:8081/api/v1/proxies/127.0.0.9:34603/history?since=7d'":                                            {shown: 1},
	"docs/api.md: curl -s --data-binary @proxies.txt 'http://127.0.0.1:8081/api/v1/enqueue?judge=http://127.0.0.2:8080/&timeout=5s&chunk=2'":  {shown: 1},
	"docs/api.md: curl -s -F judge=https://judge.example:8443/ -F judge_ca=@ca.pem -F list=@proxies.txt http://127.0.0.1:8081/api/v1/enqueue": {shown: 1},
	// Passwords in clear: the lab's proxies with credentials are lab:pw-N.
	"docs/api.md: curl -s -u \"$(cat ui.auth)\" 'http://127.0.0.1:8081/api/v1/proxies?credentials=1' | jq -r '.proxies[].proxy'":                           {line: proxyURL, some: regexp.MustCompile(`://lab:pw-[0-9]+@`)},
	"docs/api.md: curl -s -u \"$(cat ui.auth)\" 'http://127.0.0.1:8081/api/v1/pick?policy=round-robin&protocol=http&among=3&credentials=1' | jq -r .proxy": {line: regexp.MustCompile(`^http://`)},
}

// apiFailure is what the console's API or jq print when a documented call went wrong.
var apiFailure = regexp.MustCompile(`"error":|jq: error|parse error|authentication required|forbidden`)

// checkOutputs checks the outputs a block's commands left in dir, and returns what is wrong, by
// the commands' places.
func checkOutputs(b block, dir string) []string {
	var bad []string
	for i, c := range b.cmds {
		want, listed := outputs[c.key()]
		if !runnable(c) || (!listed && !callsAPI(c)) {
			continue
		}
		got, err := os.ReadFile(filepath.Join(dir, outLog(i)))
		if err == nil {
			err = checkOutput(c, want, b.shown, got)
		}
		if err != nil {
			bad = append(bad, fmt.Sprintf("%s: %v\n%s", c.where, err, tail(string(got), 15)))
		}
	}
	return bad
}

// checkOutput checks one command's output.
func checkOutput(c command, want output, shown []string, got []byte) error {
	if callsAPI(c) && apiFailure.Match(got) {
		return errors.New("the API answered an error, or jq could not read its answer")
	}
	if want.shown > 0 {
		if want.shown > len(shown) {
			return fmt.Errorf("outputs names json block %d after the block, which has %d", want.shown, len(shown))
		}
		return sameShape([]byte(shown[want.shown-1]), got)
	}
	lines := strings.Split(strings.TrimRight(string(got), "\n"), "\n")
	for _, l := range lines {
		if want.line != nil && !want.line.MatchString(l) {
			return fmt.Errorf("line %q does not match %s", l, want.line)
		}
	}
	if want.some != nil && !slices.ContainsFunc(lines, want.some.MatchString) {
		return fmt.Errorf("no line matches %s", want.some)
	}
	return nil
}

// sameShape checks that got is JSON of the shape of the documented JSON doc.
func sameShape(doc, got []byte) error {
	var d, g any
	if err := json.Unmarshal(doc, &d); err != nil {
		return fmt.Errorf("the documented output is not JSON: %w", err)
	}
	if err := json.NewDecoder(bytes.NewReader(got)).Decode(&g); err != nil {
		return fmt.Errorf("the output is not JSON: %w", err)
	}
	return shape("$", d, g)
}

// shape compares the value g at path with the documented value d.
func shape(path string, d, g any) error {
	switch d := d.(type) {
	case map[string]any:
		gm, ok := g.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: the docs show an object, the output has %s", path, kind(g))
		}
		if dk, gk := slices.Sorted(maps.Keys(d)), slices.Sorted(maps.Keys(gm)); !slices.Equal(dk, gk) {
			return fmt.Errorf("%s: the docs show the keys %q, the output has %q", path, dk, gk)
		}
		for k, v := range d {
			if err := shape(path+"."+k, v, gm[k]); err != nil {
				return err
			}
		}
		return nil
	case []any:
		ga, ok := g.([]any)
		if !ok {
			return fmt.Errorf("%s: the docs show an array, the output has %s", path, kind(g))
		}
		if len(d) > 0 && len(ga) == 0 {
			return fmt.Errorf("%s: the docs show entries, the output has none", path)
		}
		for i, v := range ga {
			if len(d) > 0 {
				if err := shape(fmt.Sprintf("%s[%d]", path, i), d[0], v); err != nil {
					return err
				}
			}
		}
		return nil
	default:
		if kind(d) != kind(g) {
			return fmt.Errorf("%s: the docs show %s, the output has %s", path, kind(d), kind(g))
		}
		return nil
	}
}

// kind names the JSON type of a decoded value.
func kind(v any) string {
	switch v.(type) {
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	case string:
		return "a string"
	case float64:
		return "a number"
	case bool:
		return "a boolean"
	default:
		return "null"
	}
}
