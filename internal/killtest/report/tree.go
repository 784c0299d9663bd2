package report

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/proxyline/proxyline/internal/killtest/human"
)

// Tree is the attributed processes at the moment a fault fired: who was whose child, which
// ones the fault signalled, and what became of each afterwards (orphaned, ended, lived on).
type Tree struct {
	At     time.Duration `json:"at_ns"` // since the scenario started
	Fault  string        `json:"fault"`
	Firing int           `json:"firing"` // 1-based
	Of     int           `json:"of"`     // firings asked for
	Signal string        `json:"signal"`
	Procs  []TreeProc    `json:"procs"`
}

// TreeProc is one process of a Tree.
type TreeProc struct {
	PID       int    `json:"pid"`
	StartTime uint64 `json:"starttime"`
	PPID      int    `json:"ppid"`
	Command   string `json:"command"`
	State     string `json:"state,omitempty"`
	// Target is set when this fault firing signalled it.
	Target bool `json:"target,omitempty"`
	// Orphaned: its parent died after the fault and it lived on, re-parented (to the harness,
	// or to NewPPID); OrphanedAfter is how long after the fault that was first seen.
	Orphaned      bool          `json:"orphaned,omitempty"`
	OrphanedAfter time.Duration `json:"orphaned_after_ns,omitempty"`
	NewPPID       int           `json:"new_ppid,omitempty"`
	// Ended: it was seen dead DiedAfter the fault. Neither Ended nor Orphaned: it lived on to
	// the end of the observation (or its fate is unknown: Fate says).
	Ended     bool          `json:"ended,omitempty"`
	DiedAfter time.Duration `json:"died_after_ns,omitempty"`
	Fate      string        `json:"fate,omitempty"` // in words
}

// fateWords describes what became of p after the fault.
func (p TreeProc) fateWords() string {
	var parts []string
	if p.Target {
		parts = append(parts, "signalled")
	}
	if p.Orphaned {
		s := "ORPHANED"
		if p.OrphanedAfter > 0 {
			s += " after " + human.Duration(p.OrphanedAfter)
		}
		if p.NewPPID != 0 {
			s += fmt.Sprintf(" (re-parented to %d)", p.NewPPID)
		}
		parts = append(parts, s)
	}
	switch {
	case p.Ended:
		parts = append(parts, "ended after "+human.Duration(p.DiedAfter))
	case p.Fate != "":
		parts = append(parts, p.Fate)
	}
	return strings.Join(parts, ", ")
}

// treeRow is one process placed in the drawing: its depth and the prefix that draws the
// branches in text.
type treeRow struct {
	TreeProc
	Depth  int
	Prefix string // "│  ├─ " and the like
	Parent int    // row index of its parent in the drawing, -1 for a root
}

// layout orders a tree's processes depth first (children by pid under their parent; roots are
// processes whose parent is not in the tree).
func layout(t Tree) []treeRow {
	byPID := map[int]bool{}
	for _, p := range t.Procs {
		byPID[p.PID] = true
	}
	kids := map[int][]TreeProc{}
	var roots []TreeProc
	for _, p := range t.Procs {
		if p.PPID != p.PID && byPID[p.PPID] {
			kids[p.PPID] = append(kids[p.PPID], p)
		} else {
			roots = append(roots, p)
		}
	}
	cmp := func(a, b TreeProc) int { return a.PID - b.PID }
	slices.SortFunc(roots, cmp)
	var rows []treeRow
	seen := map[int]bool{}
	var add func(p TreeProc, depth int, lead string, last bool, parent int)
	add = func(p TreeProc, depth int, lead string, last bool, parent int) {
		if seen[p.PID] {
			return // a cycle in recorded ppids (pid reuse): draw each process once
		}
		seen[p.PID] = true
		prefix := ""
		next := ""
		if depth > 0 {
			prefix, next = lead+"├─ ", lead+"│  "
			if last {
				prefix, next = lead+"└─ ", lead+"   "
			}
		}
		rows = append(rows, treeRow{TreeProc: p, Depth: depth, Prefix: prefix, Parent: parent})
		me := len(rows) - 1
		cs := kids[p.PID]
		slices.SortFunc(cs, cmp)
		for i, c := range cs {
			add(c, depth+1, next, i == len(cs)-1, me)
		}
	}
	for _, r := range roots {
		add(r, 0, "", true, -1)
	}
	return rows
}

// maxTreeRows bounds the processes drawn per tree (the JSON has all of them).
const maxTreeRows = 60

// textTree draws a tree with box-drawing branches, one process per line.
func textTree(t Tree) string {
	var b strings.Builder
	rows := layout(t)
	for i, r := range rows {
		if i == maxTreeRows {
			fmt.Fprintf(&b, "… %d more in the JSON report\n", len(rows)-i)
			break
		}
		fmt.Fprintf(&b, "%s%d %s", r.Prefix, r.PID, clipText(r.Command, 90))
		if f := r.fateWords(); f != "" {
			fmt.Fprintf(&b, "   ← %s", f)
		}
		b.WriteString("\n")
	}
	return b.String()
}

func (t Tree) title() string {
	return fmt.Sprintf("%s, firing %d/%d: %s at %s", t.Fault, t.Firing, t.Of, t.Signal, human.Duration(t.At))
}

func clipText(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}
