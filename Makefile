.PHONY: build test demo bench deb
build:
	go build -o bin/bulwark ./cmd/bulwark

# The whole test suite; installs what it needs on a fresh Debian machine.
test:
	scripts/test

# A vendor repository with one real .deb update, published and verified.
demo:
	scripts/demo

# Debian packages bulwark, bulwark-server and bulwark-agent in dist/out.
deb:
	scripts/package dist/out

bench:
	scripts/bench
