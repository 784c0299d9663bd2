package docrun_test

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"mvdan.cc/sh/v3/syntax"
)

// block is one ```sh code block of a document.
type block struct {
	file string // relative to the module root
	line int    // of the first line inside the fence
	cmds []command
	// shown holds the ```json blocks that follow the block (blank lines between at most): the
	// outputs the document shows for its commands.
	shown []string
}

// command is one top-level shell statement of a block: what a reader would copy and run.
type command struct {
	file, where string   // where is "file:line"
	text        string   // as written, without a trailing & or ;, whitespace collapsed
	src         string   // as written, without a trailing & or ;
	background  bool     // ends with &
	call        []string // the words of a simple command ("" for a word that is not a literal)
}

// key names c in notRunnable, allowedExit and outputs: "file: text".
func (c command) key() string { return c.file + ": " + c.text }

// docs returns the documents whose commands run: README.md and docs/*.md.
func docs(root string) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		return nil, err
	}
	return append([]string{filepath.Join(root, "README.md")}, files...), nil
}

// extract returns the ```sh blocks of the document at path, parsed into commands.
func extract(root, path string) ([]block, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	rel, _ := filepath.Rel(root, path)
	var blocks []block
	var cur *strings.Builder
	start := 0
	inJSON, follows := false, false // follows: only blank lines and json blocks since the last sh block
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		switch {
		case cur == nil && trimmed == "```sh":
			cur, start = &strings.Builder{}, n+1
		case cur == nil && trimmed == "```json" && follows:
			cur, inJSON = &strings.Builder{}, true
		case cur != nil && trimmed == "```" && inJSON:
			last := &blocks[len(blocks)-1]
			last.shown = append(last.shown, cur.String())
			cur, inJSON = nil, false
		case cur != nil && trimmed == "```":
			b, err := parseBlock(rel, start, cur.String())
			if err != nil {
				return nil, err
			}
			blocks = append(blocks, b)
			cur, follows = nil, true
		case cur != nil:
			cur.WriteString(line + "\n")
		case trimmed != "":
			follows = false
		}
	}
	if cur != nil {
		return nil, fmt.Errorf("%s:%d: ```sh block not closed", rel, start-1)
	}
	return blocks, sc.Err()
}

// parseBlock splits the text of a block that starts at line start of file into its statements.
func parseBlock(file string, start int, text string) (block, error) {
	prog, err := syntax.NewParser().Parse(strings.NewReader(text), file)
	if err != nil {
		return block{}, fmt.Errorf("%s:%d: not shell: %w", file, start, err)
	}
	b := block{file: file, line: start}
	for _, st := range prog.Stmts {
		src := text[st.Pos().Offset():st.End().Offset()]
		src = strings.TrimSpace(strings.TrimRight(strings.TrimSpace(src), ";&"))
		c := command{
			file:       file,
			where:      fmt.Sprintf("%s:%d", file, start+int(st.Pos().Line())-1),
			text:       strings.Join(strings.Fields(src), " "),
			src:        src,
			background: st.Background,
		}
		if call, ok := st.Cmd.(*syntax.CallExpr); ok && len(st.Redirs) == 0 {
			for _, w := range call.Args {
				c.call = append(c.call, w.Lit())
			}
		}
		b.cmds = append(b.cmds, c)
	}
	return b, nil
}
