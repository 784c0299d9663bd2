// Package proctab is in the base layer, yet imports a service: an upward arrow.
package proctab

import "example.com/badmod/internal/queue"

// N uses the service.
const N = queue.Jobs
