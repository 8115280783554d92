// Package servertest holds helpers for tests that run a real update server
// from outside package server (e2e, cmd/bulwark). It must not be imported
// outside tests.
package servertest

import (
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/server"
)

// WaitStartSync waits until the sync srv runs at start has ended
// (server.Server.StartSynced), and fails the test after two minutes. Until
// then that sync may index a vendor repository the test changes next, or
// fetch the updates a sync the test watches should.
func WaitStartSync(t testing.TB, srv *server.Server) {
	t.Helper()
	select {
	case <-srv.StartSynced():
	case <-time.After(2 * time.Minute):
		t.Fatal("the sync the server runs at start did not end within two minutes")
	}
}
