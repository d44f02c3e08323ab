"""reconcile: puts every live session right from its host (state, missed messages, acks),
for what no webhook reported (every 5 minutes). No URL."""

from wa_gateway import services
from wa_gateway.job_app import JobApp

app = JobApp("reconcile", needs=("store", "host", "crypto", "media"), runner=services.reconciler)
handler = app.handler
