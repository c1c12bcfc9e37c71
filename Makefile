# redraft: the commands a person runs. `make run` and `make test` do their own set-up.
CARGO ?= cargo
PORT ?= 6379
DATA_DIR ?= ./data

.PHONY: run build test fmt lint bench bench-quick bench-cluster bench-node bench-raft bench-moves cluster deps bench-deps clean jepsen jepsen-short fuzz

## Build and start one node on 127.0.0.1:$(PORT) (data in $(DATA_DIR)).
run:
	$(CARGO) run --release -p redraft -- --bind 127.0.0.1 --port $(PORT) --data-dir $(DATA_DIR)

build:
	$(CARGO) build --release -p redraft

## Install what the tests need (redis-server, redis-tools) when missing.
deps:
	tools/ensure-deps

## Also etcd-server and etcd-client, for the benchmarks.
bench-deps:
	tools/ensure-deps bench

## Every test: unit, data-driven scripts, differential against redis-server, protocol,
## clients and the short benchmark check.
test: deps
	$(CARGO) build -p redraft
	$(CARGO) test --workspace --doc
	# The integration suite through a one-node Raft group instead of memory (the main run
	# below covers it in memory, plus the multi-process cluster, fault and TLS stories).
	REDRAFT_TEST_ENGINE=raft REDRAFT_DIFF_SEQUENCES=300 $(CARGO) test -p redraft-tests --test it -- --skip cluster:: --skip cluster_protocol:: --skip faults:: --skip tls:: --skip moves::
	# The benchmark suite end to end for a second per point (redis-server and a one-node
	# redraft): fails unless the table comes out with a ratio.
	$(CARGO) run -q -p redraft-bench -- suite --plan smoke --redraft target/debug/redraft --out target/bench/smoke
	# The cluster benchmark end to end, briefly (a real Redis Cluster and redraft's 16
	# groups under redis-benchmark --cluster): fails unless every row comes out.
	REQUESTS=3000 KEYS=1000 REDRAFT=target/debug/redraft tools/bench-cluster | tee target/bench/cluster-smoke.md
	test "$$(grep -c '^| [SG]ET -P' target/bench/cluster-smoke.md)" = 4
	# Slot moves end to end, briefly (a move under writes, 3 -> 5 -> 3 nodes): fails if
	# anything is lost or a replica differs.
	$(CARGO) run -q -p redraft-tests --bin move-bench -- --redraft target/debug/redraft \
	  --keys 2000 --clients 10 --scale-keys 10000 --out target/bench/moves-smoke.md
	# The short Jepsen suite: every nemesis, then the UNSAFE self-tests (needs root;
	# REDRAFT_JEPSEN_SKIP=1 skips it, loudly).
	$(MAKE) --no-print-directory jepsen-short
	# Last, so its summary closes the output.
	if $(CARGO) nextest --version >/dev/null 2>&1; then \
	  $(CARGO) nextest run --workspace --no-fail-fast; \
	else \
	  $(CARGO) test --workspace --no-fail-fast; \
	fi

fmt:
	$(CARGO) fmt --all

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

## Three local nodes (RESP ports 6381-6383); Ctrl-C stops them.
cluster: build
	tools/cluster

## The side-by-side suite (BENCHMARKS.md): redis-server (no persistence, everysec,
## always), a three-member etcd, redraft with one and three nodes, in turn on loopback;
## Markdown table with ratios, JSON and SVG plots in target/bench/<time>-full. ~30 min.
bench: bench-deps build
	$(CARGO) run --release -q -p redraft-bench -- suite --plan full $(BENCH_ARGS)
	tools/bench-cluster

## A real 3-master Redis Cluster (appendfsync always) beside a 3-node redraft (16 groups,
## leaders balanced), both under redis-benchmark --cluster: req/s, p50, CPU per request.
bench-cluster: deps build
	tools/bench-cluster

## The headline rows only (redraft three nodes vs Redis always vs etcd, SET and GET at 50
## clients, pipeline 1 and 16): a few minutes.
bench-quick: bench-deps build
	$(CARGO) run --release -q -p redraft-bench -- suite --plan quick $(BENCH_ARGS)

## Raft's cost: redis-server (appendfsync always), one-node and three-node redraft side by
## side, and the time writes take to come back after kill -9 of the leader.
bench-raft: deps build
	tools/bench-raft

## What a slot move costs (move time, client stalls, the rest's throughput) and scaling
## 3 -> 5 -> 3 nodes with a million keys, on a release build.
bench-moves: deps
	$(CARGO) build --release -p redraft
	tools/bench-moves

## redis-server and redraft side by side: throughput and memory ratios.
bench-node: deps build
	tools/bench-node

## The Jepsen-style suite: every nemesis and a mixed one x every workload, SECONDS each
## (default 60). One combination: make jepsen NEMESIS=partition WORKLOAD=register SECONDS=30;
## UNSAFE=local-reads or local-clock starts the nodes unsafe (the self-tests); SEED=n
## replays a schedule; NODES=5 for five nodes.
## Needs root (network namespace, iptables). Runs land in target/jepsen/.
NEMESIS ?= all
WORKLOAD ?= all
SECONDS ?= 60
UNSAFE ?=
SEED ?=
NODES ?= 3
jepsen: deps
	$(CARGO) build -p redraft
	$(CARGO) build -p redraft-tests --bin jepsen
	target/debug/jepsen run --nemesis $(NEMESIS) --workload $(WORKLOAD) --seconds $(SECONDS) \
	  --nodes $(NODES) $(if $(UNSAFE),--unsafe $(UNSAFE)) $(if $(SEED),--seed $(SEED))

## The short suite `make test` runs (a few minutes): every nemesis, then the self-tests.
## A fixed seed (SEED=1 unless given) keeps its schedule the same from run to run.
jepsen-short: deps
	$(CARGO) build -p redraft
	$(CARGO) build -p redraft-tests --bin jepsen
	target/debug/jepsen short --seed $(or $(SEED),1)

## Fuzz every target for FUZZ_RUNS executions each (default 10,000,000), growing its
## corpus in fuzz/corpus/<target>/ (make test replays it on stable Rust). Needs a nightly
## toolchain; installs cargo-fuzz when missing.
FUZZ_RUNS ?= 10000000
FUZZ_TARGETS ?= resp_request kv_command proposal snapshot glob acl_rules grpc_message
fuzz:
	command -v cargo-fuzz >/dev/null 2>&1 || $(CARGO) install cargo-fuzz --locked
	$(CARGO) run -q -p fuzzing --example seeds -- fuzz/corpus
	cd fuzz && for t in $(FUZZ_TARGETS); do \
	  cargo +nightly fuzz run -O $$t -- -runs=$(FUZZ_RUNS) -print_final_stats=1 || exit 1; \
	  cargo +nightly fuzz cmin -O $$t || exit 1; \
	done

clean:
	$(CARGO) clean
