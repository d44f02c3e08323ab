"""scheduler: sends the scheduled messages that are due (every minute). No URL."""

from wa_gateway import services
from wa_gateway.job_app import JobApp

app = JobApp("scheduler", needs=("store", "host", "crypto"), runner=services.scheduler)
handler = app.handler
