package proxy

import (
	"fmt"
	"path/filepath"
	"strings"
)

// Format is a proxy list format. The zero value, Auto, detects the format when reading and
// writes Text.
type Format string

// The list formats, described in docs/formats.md.
const (
	Auto  Format = ""      // reading: detect from the first meaningful line; writing: Text
	Text  Format = "text"  // one proxy per line in any form Parse accepts; written as String() does
	JSONL Format = "jsonl" // one JSON object per line
	CSV   Format = "csv"   // a header row naming the columns, then one proxy per row
)

// ParseFormat maps a format name to a Format: "text" (or "txt"), "jsonl" (or "json", "ndjson"),
// "csv", and "auto" or "" for Auto. Case is ignored.
func ParseFormat(s string) (Format, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "auto":
		return Auto, nil
	case "text", "txt":
		return Text, nil
	case "jsonl", "json", "ndjson":
		return JSONL, nil
	case "csv":
		return CSV, nil
	}
	return Auto, fmt.Errorf("proxy list format %q: want text, jsonl, csv or auto", s)
}

// FormatOf guesses the format to write to path from its extension: .jsonl, .json and .ndjson are
// JSONL, .csv is CSV, anything else Text.
func FormatOf(path string) Format {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".jsonl", ".json", ".ndjson":
		return JSONL
	case ".csv":
		return CSV
	}
	return Text
}
