# The benchmark: included by the Makefile.
#
#   make bench   cold starts, warm latency against the floor, database round trips, webhook
#                throughput, the purge of 100,000 stale sessions, the layer's size and memory,
#                on a local stack (embedded PostgreSQL, simulator, gateway) it starts and stops
#                itself; prints a table and writes .local/bench.json (about 3 minutes)
#
#   make bench-reconcile   one reconcile pass over 1,000 connected sessions on the simulator,
#                then a second (the steady state): seconds, host calls and database round trips
#                per session; writes .local/bench-reconcile.json (`--sessions N` in BENCH_ARGS)
#
# BENCH_ARGS passes options through: `make bench BENCH_ARGS="--cold-runs 11"`, `--quick` for a
# smoke run; `.venv/bin/python -m bench --help` lists them.

VENV ?= .venv
PY ?= $(VENV)/bin/python
BENCH_STAMP := $(VENV)/.bench-deps-$(shell cksum < bench/requirements.txt | cut -d' ' -f1)

.PHONY: bench bench-deps bench-reconcile

# What only the bench needs (its cold-start baseline imports supabase), in the dev venv.
$(BENCH_STAMP): bench/requirements.txt | venv
	$(PY) -m pip install --quiet --disable-pip-version-check -r bench/requirements.txt
	rm -f $(VENV)/.bench-deps-*; touch $@

bench-deps: $(BENCH_STAMP)

bench: venv supabase-cli sam-build bench-deps
	$(PY) -m bench $(BENCH_ARGS)

bench-reconcile: venv supabase-cli
	$(PY) -m bench.reconcile_load $(BENCH_ARGS)
