package run

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/proxyline/proxyline/internal/killtest/scenario"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestScratch(t *testing.T) {
	f := os.Getenv("KT_SCRATCH")
	if f == "" {
		t.Skip()
	}
	sc, err := scenario.LoadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	res := Run(context.Background(), sc, 1, 42, Options{Log: slog.New(slog.NewTextHandler(os.Stderr, nil))})
	b, _ := json.MarshalIndent(res, "", " ")
	t.Logf("%s", b)
}
