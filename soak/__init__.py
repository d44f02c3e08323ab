"""``make soak`` / ``python -m soak``: the gateway under sustained load, and nothing lost.

Starts a local stack of its own (embedded PostgreSQL, the WPPConnect simulator delivering its
webhooks shuffled and duplicated, the gateway with the send governor raised), links many users,
then for a bounded time has them all at once send (with idempotency keys, and replays of them),
read their status, receive messages, and a few disconnect and link again, while a webhook storm
replays real events, posts unknown ones and unproven ones; then a phase of sends and incoming
messages while the host loses 10 % of its webhooks at random, and reconcile passes (as the
schedule runs them, until one leaves nothing to the next); then a scheduled phase: every user
schedules messages through the gateway, scheduler passes start every few seconds and overlap,
the host takes seconds a send, and it restarts (goes away for some seconds and comes back
restoring its sessions) while the messages are due. It prints held requests per second and
p50/p99 latency per operation, then checks the invariants:

* every accepted send, and every accepted scheduled message, is stored once and sent once
  (against the simulator's outbox, what it sent before its restart included);
* every incoming message the host delivered is stored once (against the simulator's inbox);
* every session is in the state the host says it is in (its events explain it);
* every outbound row is in a state the send protocol allows; the event log has no gaps.

Writes everything to ``.local/soak.json``; exits 1 when an invariant fails or a request got a
5xx. Not part of ``make test``: it runs for minutes (``--duration``, default 150 s).
"""
