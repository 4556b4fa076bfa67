# Tsubame. `make demo` runs a local cluster with the demo app; `make test` runs every test.
GO ?= go
BIN := bin/tsubame

.PHONY: all build demo test test-go components bench toolchains clean figures plots

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

# The paper's figures on real CPU (a cgroup per node, root needed) beside nginx
# (scripts/install-bench-tools.sh): runs every scenario (about 15 minutes),
# writes docs/figures/report.json, the CSVs and the SVG and PNG figures.
FIGURES_FLAGS ?= --cpus 0.25 --reps 3 --requests 400 --workers 2 --concurrency 32
figures: build
	mkdir -p docs/figures
	./$(BIN) bench paper-cpu $(FIGURES_FLAGS) --out docs/figures | tee docs/figures/run.txt

# Redraw the figures from docs/figures/report.json without running anything.
plots: build
	./$(BIN) bench paper-plot --report docs/figures/report.json
