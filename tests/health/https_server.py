#!/usr/bin/env python3
"""HTTPS server for tests/health: a self-signed certificate made with the
openssl CLI, every GET answered with --status. Binds 127.0.0.1 on a free
port and writes that port to --port-file once it listens. Runs until killed
(the test stops it by PID; PR_SET_PDEATHSIG covers a crashed test)."""
import argparse
import http.server
import os
import ssl
import subprocess
import tempfile


class Handler(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self):  # noqa: N802 (http.server's naming)
        self.send_response(Handler.status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port-file", required=True)
    parser.add_argument("--status", type=int, default=200)
    args = parser.parse_args()
    Handler.status = args.status
    with tempfile.TemporaryDirectory() as tmp:
        cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec",
                        "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                        "-keyout", key, "-out", cert, "-days", "1",
                        "-subj", "/CN=backend.test"],
                       check=True, capture_output=True)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        port_tmp = args.port_file + ".tmp"
        with open(port_tmp, "w") as f:
            f.write(str(server.server_address[1]))
        os.rename(port_tmp, args.port_file)  # the reader never sees half a number
        server.serve_forever()


if __name__ == "__main__":
    main()
