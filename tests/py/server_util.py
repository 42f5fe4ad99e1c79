"""Start a real `suanli serve` process on a free port and talk to it."""

import http.client
import json
import os
import re
import signal
import subprocess
import tempfile
import time


class ServerProcess:
    def __init__(self, suanli_bin, model, *extra, env=None, ready_timeout=120):
        self.log = tempfile.NamedTemporaryFile(prefix="suanli-serve-", suffix=".log", delete=False)
        args = [suanli_bin, "serve", "-m", model, "--port", "0", "-t", "2", *extra]
        if "--kv-memory" not in extra:
            args += ["--kv-memory", "256MiB"]
        self.proc = subprocess.Popen(
            args, stdout=self.log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )
        self.port = None
        deadline = time.time() + ready_timeout
        while time.time() < deadline:
            text = self.log_text()
            m = re.search(r"listening on http://[^:]+:(\d+)", text)
            if m:
                self.port = int(m.group(1))
            if self.port and "ready:" in text:
                break
            if self.proc.poll() is not None:
                raise RuntimeError(f"suanli serve exited {self.proc.returncode}:\n{text}")
            time.sleep(0.05)
        else:
            self.stop()
            raise RuntimeError("suanli serve did not become ready:\n" + self.log_text())
        self.url = f"http://127.0.0.1:{self.port}"

    def log_text(self):
        with open(self.log.name, errors="replace") as f:
            return f.read()

    def request(self, method, path, body=None, headers=None, timeout=60):
        """One request on a fresh connection: (status, headers dict, body bytes)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode()
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        conn.close()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data

    def health(self):
        return self.request("GET", "/health", timeout=10)[0]

    def metrics(self):
        status, _, body = self.request("GET", "/metrics", timeout=10)
        assert status == 200
        values = {}
        for line in body.decode().splitlines():
            if line.startswith("#") or not line.strip():
                continue
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
        return values

    def metric_sum(self, prefix):
        return sum(v for k, v in self.metrics().items() if k == prefix or k.startswith(prefix + "{"))

    def signal(self, sig=signal.SIGTERM):
        self.proc.send_signal(sig)

    def stop(self, timeout=60):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode
