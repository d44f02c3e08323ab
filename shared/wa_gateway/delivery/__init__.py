"""Event delivery to users' own HTTPS endpoints, as the Standard Webhooks specification says.

* ``signing``: the ``webhook-id``, ``webhook-timestamp`` and ``webhook-signature`` headers;
* ``addresses``: which URLs and addresses events may go to (https, public addresses only);
* ``http``: one POST to one checked address: no second lookup, no redirect, a hard deadline,
  at most 1 KiB of the answer read;
* ``store``: the worker's calls (claim endpoints under a lease, record attempts);
* ``worker``: the delivery worker, in order per endpoint, endpoints side by side;
* ``endpoints``: the api-keys function's endpoints, deliveries and replays.

What is delivered is written by the database, in the transaction of each change (the
``event_delivery`` migration); a function that queued some starts the worker at once
(``wa_gateway.lambda_invoke``, through ``runtime.start_deliveries``). Nothing here is imported
by a function that does not deliver or manage endpoints.
"""
