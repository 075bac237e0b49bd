#!/usr/bin/env python3
"""A fake Hugging Face Hub for Balcony's tests (Python 3.11 standard library only).

Serves one model repository from a local directory with the Hub's URLs and headers:

  GET  /api/models/OWNER/NAME/revision/REV        listing: {"id", "sha", "siblings": [...]}
  HEAD|GET /OWNER/NAME/resolve/REV/PATH           small files: 200 with ETag (git blob sha1),
                                                  X-Repo-Commit; large ("LFS") files: 302 to the
                                                  CDN with X-Linked-Etag (sha256), X-Linked-Size
  GET  /cdn/SHA256                                LFS content, on the host named by --cdn-host so
                                                  that the redirect crosses hosts as on the Hub

REV is "main" or the commit hash. Range requests get 206. Every request is appended to --log as
one line: "METHOD PATH range=RANGE auth=yes|no". The port (chosen by the OS) is printed as the
first line of stdout once the server listens.

Faults for tests:
  --drop-after PATH:N   the first body transfer of PATH sends N bytes, then the connection is cut
  --wrong-sha PATH      the listing and X-Linked-Etag give a sha256 that does not match PATH
  --token-required TOK  requests without "Authorization: Bearer TOK" get 401 (a gated repo)
  --ignore-range        Range headers are ignored (always 200 with the whole file)

The CDN answers 400 to requests that carry an Authorization header, as presigned S3 URLs do, so
clients must not forward the Hub token across hosts.
"""

import argparse
import hashlib
import http.server
import json
import os
import signal
import socket
import sys
import threading
import urllib.parse


class Repo:
    def __init__(self, repo_id, root, lfs_threshold, wrong_sha):
        self.repo_id = repo_id
        self.files = {}  # path -> bytes
        for folder, _, names in os.walk(root):
            for name in names:
                full = os.path.join(folder, name)
                rel = os.path.relpath(full, root).replace(os.sep, "/")
                with open(full, "rb") as f:
                    self.files[rel] = f.read()
        self.lfs = {p for p, data in self.files.items() if len(data) >= lfs_threshold}
        self.sha256 = {}
        for path, data in self.files.items():
            digest = hashlib.sha256(data).hexdigest()
            if path == wrong_sha:
                digest = hashlib.sha256(b"not the content of " + path.encode()).hexdigest()
            self.sha256[path] = digest
        self.by_sha256 = {digest: path for path, digest in self.sha256.items()}
        summary = "".join(f"{p}:{self.sha256[p]}\n" for p in sorted(self.files))
        self.commit = hashlib.sha1(summary.encode()).hexdigest()

    @staticmethod
    def git_blob_sha1(data):
        return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()

    def listing(self):
        siblings = []
        for path in sorted(self.files):
            data = self.files[path]
            entry = {"rfilename": path, "size": len(data), "blobId": self.git_blob_sha1(data)}
            if path in self.lfs:
                entry["lfs"] = {"sha256": self.sha256[path], "size": len(data), "pointerSize": 134}
            siblings.append(entry)
        return {"id": self.repo_id, "modelId": self.repo_id, "sha": self.commit, "siblings": siblings}


def make_handler(repo, args, log):
    log_lock = threading.Lock()
    drop_lock = threading.Lock()
    drop = {}
    if args.drop_after:
        path, _, count = args.drop_after.rpartition(":")
        drop[path] = int(count)

    class Handler(http.server.BaseHTTPRequestHandler):
        server_version = "FakeHub/1.0"

        def log_message(self, format, *a):  # the request log below replaces stderr noise
            pass

        def record(self):
            line = "%s %s range=%s auth=%s\n" % (
                self.command, self.path, self.headers.get("Range", "-"),
                "yes" if self.headers.get("Authorization") else "no")
            with log_lock:
                log.write(line)
                log.flush()

        def do_HEAD(self):
            self.route(body=False)

        def do_GET(self):
            self.route(body=True)

        def send_error_json(self, status, code, message):
            payload = json.dumps({"error": message}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            if code:
                self.send_header("X-Error-Code", code)
            self.send_header("X-Error-Message", message)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        def route(self, body):
            self.record()
            raw_path = urllib.parse.urlsplit(self.path).path
            parts = [urllib.parse.unquote(p) for p in raw_path.split("/")[1:]]
            if len(parts) == 2 and parts[0] == "cdn":
                return self.serve_cdn(parts[1], body)
            if len(parts) >= 6 and parts[:2] == ["api", "models"] and parts[4] == "revision":
                repo_id, rev, rest = f"{parts[2]}/{parts[3]}", "/".join(parts[5:]), None
            elif len(parts) >= 5 and parts[2] == "resolve":
                repo_id, rev, rest = f"{parts[0]}/{parts[1]}", parts[3], "/".join(parts[4:])
            else:
                return self.send_error_json(404, None, "Not Found")
            if repo_id != repo.repo_id:
                return self.send_error_json(404, "RepositoryNotFound", "Repository not found")
            if args.token_required and self.headers.get("Authorization") != f"Bearer {args.token_required}":
                return self.send_error_json(
                    401, "GatedRepo",
                    f"Access to model {repo_id} is restricted. You must be authenticated to access it.")
            if rev not in ("main", repo.commit):
                return self.send_error_json(404, "RevisionNotFound", f"Invalid rev id: {rev}")
            if rest is None:
                payload = json.dumps(repo.listing()).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                return
            if rest not in repo.files:
                return self.send_error_json(404, "EntryNotFound", f"{rest} does not exist on \"{rev}\"")
            data = repo.files[rest]
            if rest in repo.lfs:
                digest = repo.sha256[rest]
                self.send_response(302)
                self.send_header("Location", f"http://{args.cdn_host}:{self.server.server_address[1]}/cdn/{digest}")
                self.send_header("X-Repo-Commit", repo.commit)
                self.send_header("X-Linked-Etag", f'"{digest}"')
                self.send_header("X-Linked-Size", str(len(data)))
                # The Hub's own ETag here is the pointer file's; clients must prefer X-Linked-Etag.
                self.send_header("ETag", f'"{Repo.git_blob_sha1(b"pointer " + rest.encode())}"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_body(rest, data, body, {"ETag": f'"{Repo.git_blob_sha1(data)}"',
                                              "X-Repo-Commit": repo.commit})

        def serve_cdn(self, digest, body):
            if self.headers.get("Authorization"):
                return self.send_error_json(400, None, "Only one auth mechanism allowed")
            path = repo.by_sha256.get(digest)
            if path is None:
                return self.send_error_json(404, None, "NoSuchKey")
            self.send_body(path, repo.files[path], body, {"ETag": f'"{digest}"'})

        def send_body(self, path, data, body, headers):
            start = 0
            header = self.headers.get("Range")
            if header and not args.ignore_range and header.startswith("bytes=") and header.endswith("-"):
                try:
                    start = int(header[len("bytes="):-1])
                except ValueError:
                    start = 0
                if start >= len(data):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Length", str(len(data) - start))
            self.end_headers()
            if not body:
                return
            with drop_lock:
                cut = drop.pop(path, None)
            if cut is not None:
                # Send part of the body, then end the connection as a dropped download would.
                self.wfile.write(data[start:start + cut])
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_WR)
                self.close_connection = True
                return
            self.wfile.write(data[start:])

    return Handler


def keep_killable():
    """Undo what the launching process may have done to signals, and exit with it.

    A test runner's threads block signals, and exec keeps the blocked mask, so SIGTERM would
    never arrive; and a runner killed by a timeout must not leave servers behind."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT, signal.SIGHUP})
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    parent = os.getppid()

    def watch():
        while os.getppid() == parent:
            threading.Event().wait(0.5)
        os._exit(0)

    threading.Thread(target=watch, daemon=True).start()


def main():
    keep_killable()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("directory", help="folder whose files form the repository")
    parser.add_argument("--repo", required=True, help="repository id, OWNER/NAME")
    parser.add_argument("--log", required=True, help="file that receives one line per request")
    parser.add_argument("--cdn-host", default="localhost", help="host name used in LFS redirects")
    parser.add_argument("--lfs-threshold", type=int, default=100_000,
                        help="files of at least this many bytes are served as LFS files")
    parser.add_argument("--drop-after", metavar="PATH:N")
    parser.add_argument("--wrong-sha", metavar="PATH")
    parser.add_argument("--token-required", metavar="TOKEN")
    parser.add_argument("--ignore-range", action="store_true")
    args = parser.parse_args()

    repo = Repo(args.repo, args.directory, args.lfs_threshold, args.wrong_sha)
    log = open(args.log, "a", encoding="utf-8")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), make_handler(repo, args, log))
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
