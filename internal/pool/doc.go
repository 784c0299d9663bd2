// Package pool keeps the checked proxies in the queue's database: one current row per proxy
// (keyed by host:port and the scheme it was given with) and one history row per check (keyed by
// the job that checked it, so a re-run of the same job overwrites instead of duplicating).
// It speaks plain SQL with '?' placeholders through the small DB interface, so the same code
// runs on SQLite and PostgreSQL (the queue package supplies the adapters).
package pool
