#!/usr/bin/python3
"""A backend for sluice's demo and end-to-end tests: HTTP/1.1 with keep-alive
on 0.0.0.0:PORT, every answer "backend NAME". Touches READY_FILE once it
listens, and leaves on its own once PARENT_PID is gone, so a SIGKILLed test
or demo leaves no server behind for long.

    http_backend.py NAME PORT READY_FILE PARENT_PID
"""
import http.server
import os
import sys
import threading
import time

name, port, ready, parent = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        body = ("backend %s\n" % name).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Server(http.server.ThreadingHTTPServer):
    request_queue_size = 256
    allow_reuse_address = True
    daemon_threads = True


server = Server(("0.0.0.0", port), Handler)
threading.Thread(target=server.serve_forever, daemon=True).start()
open(ready, "w").close()
while True:
    time.sleep(0.5)
    try:
        os.kill(parent, 0)
    except ProcessLookupError:
        break
