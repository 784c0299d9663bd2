// Package tomlfile decodes the TOML configuration files of proxyline (scrape's sources, run's
// service) strictly and with errors a person can act on: an unknown key, a wrong type or a bad
// value is reported as file:line:column and the key's dotted name. It is the one owner of that
// decoding; go-toml/v2 does the parsing.
package tomlfile

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/pelletier/go-toml/v2"
)

// Decode decodes b, named name in errors, into v (a pointer), over what v already holds (so a
// caller can decode defaults first, then the user's file). Unknown keys are errors, all of them
// listed, one per line.
func Decode(b []byte, name string, v any) error {
	d := toml.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	err := d.Decode(v)
	var sme *toml.StrictMissingError
	if errors.As(err, &sme) {
		msgs := make([]string, len(sme.Errors))
		for i, e := range sme.Errors {
			row, col := e.Position()
			msgs[i] = fmt.Sprintf("%s:%d:%d: unknown key %q", name, row, col, strings.Join(e.Key(), "."))
		}
		return errors.New(strings.Join(msgs, "\n"))
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		row, col := de.Position()
		msg := strings.TrimPrefix(de.Error(), "toml: ")
		if k := de.Key(); len(k) > 0 {
			return fmt.Errorf("%s:%d:%d: key %q: %s", name, row, col, strings.Join(k, "."), msg)
		}
		return fmt.Errorf("%s:%d:%d: %s", name, row, col, msg)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}
