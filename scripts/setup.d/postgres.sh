# PostgreSQL for the store's conformance suite and the PostgreSQL backend's
# tests (internal/store/postgres/pgtest starts a private server from these
# binaries in a temporary directory as an unprivileged user; no system
# service is used). Sourced by scripts/test.
apt_need postgresql
