"""``make bench``: how close the gateway is to the floor, measured on the real local stack.

``python -m bench`` starts an embedded PostgreSQL (migrated like ``make dev``), the WPPConnect
simulator and the local gateway, in scratch folders on free 127.0.0.1 ports, as
``tests/conftest.py`` does (:mod:`bench.stack`), and measures in one run:

``cold_init_ms``
    A fresh interpreter per run (the venv's python, the functions' environment, PYTHONPATH =
    shared + the repo root) runs :mod:`bench.cold_runner`, which loads ``functions/<f>/app.py``
    by path and serves one realistic first request. Timed on CLOCK_MONOTONIC, which parent
    and child share: from just before the parent spawns it to the first answer, so fork,
    exec and the interpreter's own start are in. The baseline: the same, importing
    ``boto3, supabase, aws_lambda_powertools.event_handler, pydantic, requests, qrcode,
    cryptography``. Medians over interleaved runs; the host's think time is also reported
    apart. ``-X importtime`` reports: ``.local/bench-importtime-<f>.txt`` (:mod:`bench.cold`).
    The functions reach the database through ``DATABASE_URL`` (psycopg); what the other way,
    ``SUPABASE_URL`` (supabase-py's PostgREST client), costs a cold start is measured apart,
    as a fresh interpreter importing each transport alone (``cold_transport_import_ms``).
    So is what reading ``SECRETS_ARN`` adds, both ways (``cold_secrets_arn_extra_ms``):
    Powertools' parameters utility with a boto3 client, and the Parameters and Secrets
    extension (a stand-in on localhost, ``local.secrets_extension``).
``warm_ms``
    The handlers loaded once in this process, each called 500 times (after a warm-up) with
    events built by ``local.function_url.build_event``; after every call, its floor: a
    ``select 1`` per database round trip the operation cannot avoid and a ``GET /healthz`` to
    the simulator per host call (:mod:`bench.warm`). Each call's time is split into waiting
    for the database, for the host, and the gateway's own code. Also measured again with a
    1 ms network round trip time to the database (``warm_ms_at_rtt``).
``db_round_trips``
    Counted by the store's transport (``runtime.store().round_trips``) on every call, and
    checked on the wire by a PostgreSQL protocol proxy that counts statements, transactions
    and Syncs, and with injected latency the times a call waits for the server
    (``db_round_trips_wire``, :mod:`bench.wire`).
``webhook_events_per_s``
    qr-webhook over a realistic event mix (:mod:`bench.webhooks`), in-process, sequential,
    the process pinned to one core; the median of three passes. Per kind of event, its mean
    time split into the gateway's own code, the server's SQL (PostgreSQL's function
    statistics, :mod:`bench.sqlstats`) and the rest of the wait for the database: the commit
    (an incoming message waits for the write-ahead log to reach the disk) and the socket.
``purge_100k_s``
    100,000 stale sessions inserted by one statement, then one scheduled purge, timed, with
    each batch's time (:mod:`bench.purge_load`).
``conversations``
    A user with 10,000 messages in 500 chats (written through the chats' trigger), then the
    inbox's reads as the user: the first page of 50 conversations, the next one by keyset,
    and one chat's newest messages; server time (``EXPLAIN ANALYZE``), median and p90 of 200,
    with the plans (:mod:`bench.conversations`).
``layer_mb``, ``peak_rss_mb``
    The built layer unzipped (:mod:`bench.layer`); ``ru_maxrss`` of each cold-start runner
    after its first request.

``environment``
    The 1-minute load average before and after, and for each phase (cold starts, warm, the
    throughput, warm at 1 ms) how many cores were busy, with the bench and its servers and
    with everything else on the machine (:mod:`bench.machine`): figures taken while others
    used the machine say more about the machine than about the product.

Results: a table on stdout and ``.local/bench.json``.
"""
