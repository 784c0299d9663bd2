package lab

import (
	"context"
	"net/http"
	"testing"

	"github.com/proxyline/proxyline/internal/lifecycle/lifecycletest"
	"github.com/proxyline/proxyline/proxy"
)

// TestSourcesLifecycle: the source server's lifecycle (docs/lifecycle.md) on a real socket.
// Serving: a source answers 200 after the Start context ended. Its slow answers end at Stop (nothing
// to drain): no cut test.
func TestSourcesLifecycle(t *testing.T) {
	t.Parallel()
	var ps []proxy.Proxy
	for port := range 20 {
		ps = append(ps, proxy.Proxy{Scheme: proxy.HTTP, Host: "127.0.0.9", Port: uint16(8000 + port)})
	}
	lifecycletest.Run(t, lifecycletest.Subject[*Sources]{
		New: func(t *testing.T) *Sources { return NewSources(SourcesConfig{Candidates: ps, N: 2}) },
		Serving: func(t *testing.T, s *Sources) {
			resp, err := http.Get(s.Infos()[0].URL)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("source answered %s", resp.Status)
			}
		},
	})
	// Stop of a server that is gone (the lab's closer after the lab's Stop): nil.
	s := NewSources(SourcesConfig{Candidates: ps})
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := (sourcesCloser{s}).Close(); err != nil {
			t.Errorf("close = %v", err)
		}
	}
}
