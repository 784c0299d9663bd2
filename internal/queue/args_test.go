package queue_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/proxyline/proxyline/internal/queue"
)

// TestCheckOptionsJSON: jobs already in databases keep their meaning: the JSON names of the
// judge's status and keyword are the ones enqueue always wrote, whatever the Go fields are called.
func TestCheckOptionsJSON(t *testing.T) {
	t.Parallel()
	old := `{"judge":"https://127.0.0.2:8443/","timeout":5000000000,"judge_ca_pem":"PEM","expect_status":204,"expect_keyword":"REMOTE_ADDR"}`
	var o queue.CheckOptions
	if err := json.Unmarshal([]byte(old), &o); err != nil {
		t.Fatal(err)
	}
	want := queue.CheckOptions{Judge: "https://127.0.0.2:8443/", Timeout: 5e9, JudgeCAPEM: "PEM", JudgeStatus: 204, JudgeKeyword: "REMOTE_ADDR"}
	if o != want {
		t.Errorf("decoded %+v, want %+v", o, want)
	}
	o.JudgePostQuantum = true
	b, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"expect_status":204`, `"expect_keyword":"REMOTE_ADDR"`, `"judge_ca_pem":"PEM"`, `"judge_pq":true`} {
		if !strings.Contains(string(b), key) {
			t.Errorf("encoded %s lacks %s", b, key)
		}
	}
	if err := (queue.CheckOptions{JudgeStatus: 42}).Validate(); err == nil || !strings.Contains(err.Error(), "judge status 42") {
		t.Errorf("status 42: %v", err)
	}
}
