# Tsubame. `make demo` runs a local cluster with the demo app; `make test` runs every test.
GO ?= go
BIN := bin/tsubame

.PHONY: all build demo test test-go components bench toolchains clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/tsubame

# The main job: a local cluster (3 nodes, a gateway, the demo components) on embedded defaults.
demo: build
	./$(BIN) demo

# Every test. Needs only Go; under CI (CI=true) it first installs the wasm toolchains so the
# committed modules are checked against a rebuild from source.
test:
	bash scripts/test.sh

# Rebuild every committed module in testdata/ from components-src/.
components:
	bash scripts/build-components.sh

# Install the wasm toolchains (clang, rustc for wasm32, wabt, AssemblyScript).
toolchains:
	bash scripts/install-toolchains.sh

bench:
	$(GO) test -run '^$$' -bench . -benchmem -count 3 ./...

clean:
	rm -rf bin
