// Package server is Bulwark's update server over HTTPS: it serves vendor,
// mirrored and site repositories as static files, the admin API under
// /api/v1 (bearer tokens with roles), the agent API (enrollment, then mTLS
// check-ins and reports), a plain status page, /healthz and /metrics, and it
// schedules syncs from an upstream.
//
// It must not sign vendor metadata or hold vendor keys, must not serve any
// repository's keys/ directory, and must not trust what an agent or an
// upstream sends without validating it: every request body is size-capped
// and decoded strictly into plain data, and everything synced is verified
// with TUF before it is served.
package server
