"""``python -m bench.nodelay <module> [args...]``: run a local server module with TCP_NODELAY
on every connection it accepts.

The simulator and the gateway answer through ``http.server``, which writes a response's
headers and body in two writes; without TCP_NODELAY the body waits for the client's delayed
ACK, so every request on a kept-alive connection (as the host client and the bench make them)
takes about 40 ms on Linux. The real host (wppconnect-server, Node.js) and Lambda's function
URLs do not do that; the bench starts both servers through this, so that what it measures is
the gateway, not that stall.
"""

from __future__ import annotations

import runpy
import socketserver
import sys

socketserver.StreamRequestHandler.disable_nagle_algorithm = True

if __name__ == "__main__":
    module = sys.argv[1]
    sys.argv = [module, *sys.argv[2:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)
