// Package e2e holds end-to-end tests that run the real parts together: a
// vendor repository, an update server over HTTPS on loopback with SQLite, and
// agents installing real .deb files with dpkg into directory roots. It has no
// code outside its tests and must not be imported.
package e2e
