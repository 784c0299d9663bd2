// Package run belongs to killtest, yet imports the pipeline's queue.
package run

import (
	_ "example.com/badmod/internal/proctab"
	_ "example.com/badmod/internal/queue"
)
