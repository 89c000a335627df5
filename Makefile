# kvstore build targets. `make run` starts a server, `make test` runs
# everything CI runs (it installs the pinned tools it needs first).
GO      ?= go
BIN     := $(CURDIR)/.bin
PROTOC  ?= protoc

# Pinned tool versions: `make proto` must produce byte-identical output on
# every machine, and CI fails when the committed code is stale.
PROTOC_GEN_GO_VERSION      := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.2
STATICCHECK_VERSION        := v0.8.2

export PATH := $(BIN):$(PATH)

.PHONY: all build test run proto proto-check lint vet bench bench-compare tools clean

all: build

build:
	$(GO) build -o bin/kvstore-server ./cmd/server
	$(GO) build -o bin/kvstore-client ./cmd/client
	$(GO) build -o bin/kvstore-bench ./cmd/bench

# Builds, then runs the binary itself: `go run` turns the server's exit
# on Ctrl+C into "exit status 1", which make reports as an error. On a
# terminal the server runs as a job of its own (bash's job control gives
# it the terminal), so Ctrl+C reaches only the server, which shuts down
# cleanly and exits 0, and make with it; make itself would die of the
# SIGINT whatever the server did.
run:
	$(GO) build -o bin/kvstore-server ./cmd/server
	@if [ -t 0 ]; then bash -c 'set -m; bin/kvstore-server "$$@"; exit $$?' run $(ARGS); else bin/kvstore-server $(ARGS); fi

tools:
	@bash .ci/tools "$(BIN)" "$(PROTOC_GEN_GO_VERSION)" "$(PROTOC_GEN_GO_GRPC_VERSION)" "$(STATICCHECK_VERSION)"

PROTOS := kvstore.proto admin.proto

proto: tools
	$(PROTOC) --proto_path=proto \
		--go_out=proto --go_opt=paths=source_relative \
		--go-grpc_out=proto --go-grpc_opt=paths=source_relative \
		$(addprefix proto/,$(PROTOS))

# Regenerates into a scratch copy and compares, so a stale commit fails CI
# without touching the work tree.
proto-check: tools
	@tmp=$$(mktemp -d) && cp $(addprefix proto/,$(PROTOS)) $$tmp/ && \
	$(PROTOC) --proto_path=$$tmp \
		--go_out=$$tmp --go_opt=paths=source_relative \
		--go-grpc_out=$$tmp --go-grpc_opt=paths=source_relative \
		$(addprefix $$tmp/,$(PROTOS)) && \
	for f in $(foreach p,$(PROTOS),$(p:.proto=.pb.go) $(p:.proto=_grpc.pb.go)); do \
		cmp -s $$tmp/$$f proto/$$f || { echo "proto/$$f is stale: run make proto"; rm -rf $$tmp; exit 1; }; \
	done; rm -rf $$tmp; echo "generated code is up to date"

vet:
	$(GO) vet ./...

lint: tools vet
	@out=$$(gofmt -l .); [ -z "$$out" ] || { echo "gofmt needed:"; echo "$$out"; exit 1; }
	$(BIN)/staticcheck ./...

test: lint proto-check
	$(GO) test -race -count=1 ./...

bench:
	$(GO) test -run='^$$' -bench=. -benchmem ./actor/ ./wal/ ./snap/ ./cmd/server/

# kvstore against the gRPC ceiling (plain grpc-go over a mutex-guarded map):
# both as child processes on 127.0.0.1, preloaded, alternated over 3 rounds
# of 5 s for 50:50 set:get, set only and get only; prints median throughput
# and p99 ratios and draws docs/latency.svg. The server runs with
# --fsync everysec unless BENCH_ARGS says otherwise, e.g.
# BENCH_ARGS='--server-args "--fsync always --log-level warn"'.
bench-compare: build
	bin/kvstore-bench --compare --server-bin bin/kvstore-server --rounds 3 --duration 5s \
		--clients 50 --value-size 16 --keys 100000 --svg docs/latency.svg \
		$(or $(BENCH_ARGS),--server-args "--fsync everysec --log-level warn")

clean:
	rm -rf bin $(BIN)
