"""purge: the scheduled clean-up (old QR codes, long-disconnected sessions). No URL."""

from wa_gateway import services
from wa_gateway.job_app import JobApp

# The host and the encryption key are optional: without them, nothing is closed on the host.
app = JobApp("purge", needs=("store",), runner=services.purger)
handler = app.handler
