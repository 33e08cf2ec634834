"""A loopback image host for the remote-image tests: serves a folder, plus /redirect/N (N hops of 302) and /big
(more bytes than the test's cap). Prints its port on the first line; stops when stdin closes."""
import http.server
import os
import sys
import threading

ROOT = sys.argv[1]


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path.startswith("/redirect/"):
            hops, _, target = self.path[len("/redirect/"):].partition("/")
            n = int(hops)
            self.send_response(302)
            self.send_header("Location", f"/redirect/{n - 1}/{target}" if n > 1 else f"/{target}")
            self.end_headers()
            return
        if self.path == "/big":
            body = b"\x89PNG\r\n\x1a\n" + b"\0" * 300_000
        else:
            path = os.path.join(ROOT, os.path.basename(self.path))
            if not os.path.isfile(path):
                self.send_response(404)
                self.end_headers()
                return
            with open(path, "rb") as f:
                body = f.read()
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
threading.Thread(target=server.serve_forever, daemon=True).start()
sys.stdin.read()
server.shutdown()
