package queue_test

import (
	"strings"
	"testing"

	"github.com/proxyline/proxyline/internal/queue"
)

// TestJobStates: every state status counts, in the order it prints them, and a copy.
func TestJobStates(t *testing.T) {
	t.Parallel()
	got := queue.JobStates()
	if strings.Join(got, " ") != "available scheduled pending retryable running completed cancelled discarded" {
		t.Errorf("JobStates() = %q", got)
	}
	got[0] = "changed"
	if queue.JobStates()[0] != "available" {
		t.Error("JobStates returns the package's own slice")
	}
}
