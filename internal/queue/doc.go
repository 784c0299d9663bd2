// Package queue is proxyline's durable job queue: River clients on SQLite (the embedded default,
// one file shared by the processes of one machine) or PostgreSQL (many machines), the job kinds
// (check; scrape is reserved), the worker lifecycle with graceful stop, and the rescuers (see
// rescue.go) that hand back the jobs of a worker process that died on this machine (within about
// a second) or whose heartbeat has been silent for DeadAfter (any machine, a paused worker
// included). Every write a worker makes about a job is fenced by the attempt it was given
// (fence.go): a worker that lost its job cannot touch it afterwards.
//
// Shutdown order of a Worker (Stop, or the end of the context given to Start): stop fetching;
// let running jobs finish within the grace period; cancel the rest (they hand their job back with
// River's JobSnooze(0)); stop the local rescuer and heartbeat; remove the worker's row. The Store
// is closed by its owner after every Worker on it stopped.
//
// See docs/queue.md for engines, SQLite settings, job arguments, the pool schema, crash recovery
// and the status JSON.
package queue
