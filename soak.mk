# The soak: included by the Makefile (after VENV and PY are defined). Not part of `make test`.
#
#   make soak   minutes of load through the gateway on a local stack it starts itself (many
#               users linking, sending, receiving, re-linking, and a webhook storm), then the
#               invariants: every accepted send stored and sent once, every incoming message
#               stored once, every session as the host says; prints a table and writes
#               .local/soak.json; fails when an invariant fails or a request got a 5xx
#
# SOAK_ARGS passes options through, e.g. `make soak SOAK_ARGS="--duration 60 --users 12"`.

.PHONY: soak

soak: venv supabase-cli
	$(PY) -m soak $(SOAK_ARGS)
