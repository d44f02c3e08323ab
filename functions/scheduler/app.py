"""scheduler: sends the scheduled messages that are due (every minute). No URL."""

from wa_gateway import runtime
from wa_gateway.job_app import JobApp

app = JobApp("scheduler", needs=("store", "host", "crypto"), runner=runtime.scheduler)
handler = app.handler
