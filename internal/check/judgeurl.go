package check

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
)

// ValidateJudgeURL checks a judge URL as every command that checks needs it: absolute http or
// https, with a host, a port (if any) in 1-65535, no credentials and no fragment. Options.Validate
// uses it, and so does enqueue, so that a job never carries a judge no worker can use.
func ValidateJudgeURL(judge string) error {
	if judge == "" {
		return errors.New("judge: a judge URL is required")
	}
	u, err := url.Parse(judge)
	if err != nil {
		return fmt.Errorf("judge %q: %w", judge, err)
	}
	if u.User != nil {
		return fmt.Errorf("judge %q: credentials in the judge URL are not supported", u.Redacted())
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("judge %q: scheme must be http or https", judge)
	}
	if u.Opaque != "" || u.Hostname() == "" {
		return fmt.Errorf("judge %q: no host (want http://host[:port]/path)", judge)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("judge %q: port %q out of range 1-65535", judge, p)
		}
	}
	if u.Fragment != "" {
		return fmt.Errorf("judge %q: a fragment is not allowed", judge)
	}
	return nil
}
