.PHONY: build test demo bench
build:
	go build -o bin/bulwark ./cmd/bulwark

# The whole test suite; installs what it needs on a fresh Debian machine.
test:
	scripts/test

# A vendor repository with one real .deb update, published and verified.
demo:
	scripts/demo

bench:
	scripts/bench
