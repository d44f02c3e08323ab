"""A simulator of the wppconnect-server HTTP API (v2.10.4), for the local stack and tests.

It answers like the real host, quirks included: bcrypt session tokens, the exact 401/404/
400/500 bodies, the ``session`` key added when the request's Content-Type is exactly
``application/json``, a first start-session that answers ``CLOSED``, ``urlcode`` that is
never cleared, ``status-find`` webhooks in the real sequences, acks 2 and 3 after every
sent message. See the project's WPPConnect notes for the behaviour being copied.

Run it with ``python -m local.simulator --port 21465 --data-dir DIR`` (see ``__main__``).
Started again on the same ``--data-dir`` it restores its sessions as a restarted host does
(``startAllSession``); ``--config`` sets the restore's timing before it begins.

Modules: ``app`` wires the parts and dispatches; ``server`` is the HTTP plumbing; ``api``
the ``/api`` routes; ``controls`` the ``/_sim`` routes; ``state`` the session state
machine; ``messaging`` sends, acks and incoming messages; ``messages`` message objects;
``phones`` recipient normalisation; ``webhooks`` delivery; ``auth`` tokens; ``qr`` QR
codes; ``store`` what is kept on disk; ``forms`` request bodies; ``scheduler`` timers;
``config`` settings and faults; ``protocol`` request/response values.

Test controls (no auth, JSON bodies; errors are ``{"error": ...}`` with 400/404/409):

- ``POST /_sim/<s>/scan`` ``{"phone"?: "5511912345678", "wait"?: true}``: the phone scans
  the QR code (or the pairing code is typed): ``qrReadSuccess``, then ``inChat`` and
  CONNECTED after ``connect_delay_ms``. ``phone`` is the account's own number (default: the
  pairing-code phone, else a number derived from the session name); ``wait`` answers only
  once connected. Answers ``{"ok", "status", "wid"}``.
- ``POST /_sim/<s>/unlink``: the phone removes the device: ``disconnectedMobile``, the entry
  is removed and the saved login deleted. When not connected it only deletes a saved login.
- ``POST /_sim/<s>/expire``: the QR code times out now (autoClose): CLOSED, ``browserClose``.
- ``POST /_sim/<s>/refresh-qr``: a new ``urlcode`` (or pairing code) and its event now.
- ``POST /_sim/<s>/restore`` ``{"phone"?, "start"?: true}``: save a login if none exists
  (as if the phone had scanned before), then start the session if it is not running, so
  the restored-login sequence follows; ``"start": false`` only saves the login.
- ``POST /_sim/<s>/incoming`` ``{"from": "5511...", "body": "oi", "notifyName"?: "Ana",
  "group"?: true | "<id>@g.us", "author"?, "type"?, "media"?: {"data": "<base64>",
  "mime_type", "filename"?}}``: a message from someone else; ``onmessage`` follows. With
  ``media`` (or the older ``base64`` and ``mimetype``) it is a media message as the library
  serializes one (``type`` from the type: ``ptt`` for ``audio/ogg; codecs=opus``, ``sticker``
  for WebP; ``mimetype``, ``size``, ``filename``, ``body`` the caption as ``caption``), its
  file given by ``download-media``. ``"from": "status@broadcast"`` makes a status
  message (dropped by the default ignore list). Answers ``{"ok", "id", "message"}``.
- ``POST /_sim/<s>/from-phone`` ``{"to": "5511...", "body": "..."}``: the owner writes a
  message on the phone: it is in the chat (``get-messages``, ``message-by-id``, not the
  outbox) and ``onselfmessage`` posts it when ``on_self_message`` is on. Answers ``{"ok",
  "id", "message"}``.
- ``POST /_sim/<s>/ack`` ``{"id": "<host message id>", "ack": 3}``: set an ack; ``onack``.
- Conversations (``kinds``): ``incoming`` also takes ``"quoted": "<id>"`` (a reply),
  ``"location": {"lat", "lng", "name"?}``, ``"vcard"`` (with ``"vcard_name"``) or ``"vcards":
  [{"name", "vcard"}]``; and instead of a message ``"reaction": {"id", "emoji"}`` (a contact's
  reaction: ``onreactionmessage``; ``from`` who), ``"edit": {"id", "body"}`` (a contact edits
  theirs: no event, as 2.10.4 has none) or ``"revoke": {"id"}`` (``onrevokedmessage``).
  ``POST /_sim/<s>/group`` ``{"id"?, "subject", "participants": [...], "member"?: true}``
  makes a group (the account in it unless ``member`` is false); ``POST
  /_sim/<s>/participants`` ``{"group", "action": "add"|"remove"|"promote"|"demote", "who"}``
  changes it (``onparticipantschanged``); ``GET /_sim/<s>/actions`` lists what the account
  did through ``react-message``, ``edit-message``, ``delete-message`` and ``send-seen``.
- ``GET /_sim/<s>/outbox``: ``{"session", "outbox": [{"id", "route", "to", "type", "body",
  "t", "ack", ...file fields}]}``, every message sent, in order; a file's fields are
  ``mime_type``, ``filename``, ``size``, ``sha256`` (and the library's ``mimetype``).
- ``GET /_sim/<s>/inbox``, ``GET /_sim/<s>/seen`` (chats marked read after a 2xx answer
  to ``onmessage``), ``GET /_sim/<s>/events`` (every event emitted, with delivery results).
- ``GET /_sim/<s>``: the session's internal state (``status``, ``live``, ``urlcode``,
  ``config``, ``savedLogin``, ``start_calls``, ``starts``, ``seen``...).
- ``POST /_sim/faults`` ``{"latency_ms": 0, "error_rate": 0.0, "down": false,
  "error_mode": "500" | "garbage" | "mixed" | "throw", "routes": []}`` (partial updates;
  ``GET`` reads them): latency before every ``/api`` request; that fraction of ``/api``
  requests answered with 500 (or a 200 with a body that is not JSON; or, with ``throw``, what
  the route's controller answers when the library throws under it: get-messages' 401
  ``Error on open list``, 500 elsewhere); ``down`` closes ``/api`` connections
  without an answer; ``routes`` (say ``["send-message"]``) limits all of it to requests
  with one of those path segments. ``/_sim`` and ``/healthz`` are never affected.
- ``GET /_sim/in-flight``: ``{"in_flight": n}``, the ``/api`` requests received and not
  answered yet (held by ``latency_ms``, say), so a test can wait until the host is done.
- ``POST /_sim/config`` (partial updates; ``GET`` reads it): the keys of
  :class:`local.simulator.config.SimConfig`: ``webhook_url``, ``webhook_ignore``,
  ``webhook_timeout_ms``, ``webhook_drop_rate`` (that fraction of webhooks lost on the way,
  never posted), ``delivery_mode`` (``normal``, ``shuffle``, ``duplicate``,
  ``shuffle+duplicate``), ``shuffle_window_ms``, ``x_verify_token``, ``read_message``,
  ``listen_acks``, ``on_self_message``, ``auto_ack``, ``ack_received_ms``,
  ``ack_read_ms``, ``init_delay_ms``, ``connect_delay_ms``, ``autoclose_ms`` (0: never),
  ``qr_refresh_ms`` (0: never), ``unlink_delay_ms``, ``wait_qr_max_ms``,
  ``unknown_numbers``, ``canonical_numbers``, ``bug_lost_autoclose``,
  ``bug_no_session_after_restart``, ``bug_wait_qr_hang_on_restore``,
  ``bug_start_all_bad_secret``, ``logout_close_ms``, ``phone_code_rotates``, and for tests
  only ``launch_fail_next`` (the next N browser launches fail and stick in INITIALIZING).
  ``connect_delay_ms`` is the library's wait between the login (``qrReadSuccess`` or
  ``isLogged``) and create() resolving: the entry stays the server's placeholder until then
  (check-connection-session false, statusConnection 404), as the real host's 1.2 s and more.
- ``GET /_sim/<s>`` also has ``browsers``: the session's running browsers (its entry's, an
  orphaned pairing one's, a logged-out one still closing).
- ``POST /_sim/reset``: forget everything (sessions, stored files, messages, events,
  config, faults, host events).
- ``GET /_sim/host``: ``{"unhandledRejections", "events"}``: what happened to the host
  process (see ``host``); the events are also in ``<data dir>/host-events.log``.

Incoming messages also take ``"from_lid": true`` or ``"lid": "<digits>"`` (the sender is
named ``<lid>@lid``, and ``contact/pn-lid`` maps it); ``/_sim/<s>/ack`` takes -7 to 5 and
the id of an incoming message too.

Fidelity: the real server's quirks that hurt a gateway are each one option of
``/_sim/config`` (see :class:`local.simulator.config.SimConfig`): ``orphan_pairing_browser``,
``lid_senders`` and ``lid_numbers``, ``number_check_fault_rate`` and
``number_check_fail_next`` (WhatsApp's server fails a number lookup), ``number_miss_cache_ms``
(wa-js keeps an empty lookup 15 s), ``canonical_br_ninth_digit``, ``tokens_survive_logout``,
``auto_download`` (also a sent file's acks carry the file as their body), ``presence_events``,
``delivery_mode: "concurrent"``, ``incoming_acks``, ``answer_after_error``, ``send_time_ms`` (a
send answers once WhatsApp took the message), ``exit_on_unhandled_rejection``,
``ciphertext_first`` (a sender's first message comes as ``ciphertext``, then again decrypted
``ciphertext_ms`` later), ``chat_notices`` (get-messages lists an ``e2e_notification`` opening
each chat, ``gp2`` each group), ``route_errors_401`` (get-messages of a chat the host does not
hold answers 401), ``decrypt_error_tries`` (the first tries of each file's download answer 400
"Decrypt file error"; an unknown message id always does), ``logout_close_ms`` and
``phone_code_rotates``. ``{"fidelity": "real"}`` sets
them all (and the ``bug_*`` flags) as 2.10.4 has them, ``{"fidelity": "kind"}`` back; a
simulator starts with ``config.DEFAULT_FIDELITY`` (or ``--fidelity``).

A session named ``config``, ``faults`` or ``reset`` cannot be inspected with ``GET /_sim/<s>``.
"""

from local.simulator.app import Simulator

__all__ = ["Simulator"]
