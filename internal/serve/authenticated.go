package serve

import (
	"context"
	"net/http"
)

// authenticatedKey marks the context of a request whose credentials the Gate verified.
type authenticatedKey struct{}

// Authenticated reports whether r reached the handler through a Gate that verified its
// credentials (HTTP basic authentication). It is false for every request of a server without
// credentials, loopback included: a handler that reveals a secret only to authenticated clients
// (a proxy's password) asks this.
func Authenticated(r *http.Request) bool {
	ok, _ := r.Context().Value(authenticatedKey{}).(bool)
	return ok
}

// markAuthenticated returns r with its context marked as authenticated.
func markAuthenticated(r *http.Request) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), authenticatedKey{}, true))
}
