// Package secret is a base package; it breaks no rule.
package secret

// Mask hides a secret.
func Mask(string) string { return "***" }
