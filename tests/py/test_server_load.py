"""A bounded load test of `suanli serve` on loopback: 1,000 concurrent
streaming clients (stdlib asyncio streams, no client library), 10% of them
disconnecting at a random point. No crash, no leaked KV blocks or running
requests afterwards, every completed stream well-formed."""

import asyncio
import json
import random
import resource
import time

import pytest

from server_util import ServerProcess

N_CLIENTS = 1000
DISCONNECT_FRACTION = 0.10


@pytest.fixture(scope="module")
def server(suanli_bin, default_model):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 4 * N_CLIENTS:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8 * N_CLIENTS), hard))
    s = ServerProcess(suanli_bin, default_model, "--max-queue", "4000", "--max-seqs", "128", "--kv-memory", "512MiB")
    yield s
    assert s.stop() == 0


def dechunk(raw: bytes) -> bytes:
    out = b""
    while True:
        line, _, raw = raw.partition(b"\r\n")
        n = int(line, 16)
        if n == 0:
            return out
        out += raw[:n]
        assert raw[n : n + 2] == b"\r\n"
        raw = raw[n + 2 :]


def check_stream(body: bytes, n_tokens: int):
    text = body.decode()
    assert text.endswith("data: [DONE]\n\n")
    events = text.split("\n\n")[:-1]
    assert all(e.startswith("data: ") for e in events)
    payloads = [json.loads(e[6:]) for e in events[:-1]]
    assert len({p["id"] for p in payloads}) == 1
    finish = [c["finish_reason"] for p in payloads for c in p["choices"] if c["finish_reason"]]
    assert finish == ["length"], finish
    assert payloads[-1]["choices"] == []
    assert payloads[-1]["usage"]["completion_tokens"] == n_tokens


async def one_client(port, i, rng, stats, repeat=False):
    n_tokens = rng.randint(8, 24) if repeat else rng.randint(2, 4)
    # repeat: text that repeats itself, so speculative drafts are found.
    prompt = f"Client {i}: red, green, blue, red, green, blue, red," if repeat else \
        f"Client {i} says hello and asks for a number:"
    body = json.dumps(
        {
            "prompt": prompt,
            "max_tokens": n_tokens,
            "stream": True,
            "ignore_eos": True,
            "temperature": 0.8,
            "stream_options": {"include_usage": True},
        }
    ).encode()
    disconnect = rng.random() < DISCONNECT_FRACTION
    # Where a disconnecting client gives up: mid-request, after the head,
    # or after some of the events.
    cut = rng.choice(["request", "head", "events"]) if disconnect else None
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        req = (
            b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
        )
        if cut == "request":
            writer.write(req + body[: len(body) // 2])
            await writer.drain()
            stats["disconnected"] += 1
            return
        writer.write(req + body)
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=600)
        if not head.startswith(b"HTTP/1.1 200"):
            stats["status"][head.split(b" ")[1].decode()] = stats["status"].get(head.split(b" ")[1].decode(), 0) + 1
            return
        if cut == "head":
            stats["disconnected"] += 1
            return
        raw = b""
        if cut == "events":
            raw = await asyncio.wait_for(reader.read(rng.randint(1, 400)), timeout=600)
            stats["disconnected"] += 1
            return
        while not raw.endswith(b"0\r\n\r\n"):
            part = await asyncio.wait_for(reader.read(65536), timeout=600)
            assert part, "server closed a stream early"
            raw += part
        check_stream(dechunk(raw), n_tokens)
        stats["completed"] += 1
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except (ConnectionError, OSError):
            pass


async def run_load(port, seed=1, n_clients=N_CLIENTS, repeat=False):
    rng = random.Random(seed)
    stats = {"completed": 0, "disconnected": 0, "status": {}}
    tasks = [asyncio.create_task(one_client(port, i, random.Random(rng.random()), stats, repeat))
             for i in range(n_clients)]
    results = await asyncio.gather(*tasks, return_exceptions=True)
    errors = [r for r in results if isinstance(r, BaseException)]
    return stats, errors


def test_thousand_concurrent_streams_with_disconnects(server):
    check_load(server, N_CLIENTS, repeat=False)


def test_speculative_streams_under_load_with_disconnects(suanli_bin, default_model):
    """The same under --spec-ngram, with drafts allowed in batched steps:
    drafts are kept, and disconnects and forks of the load leave nothing
    behind."""
    s = ServerProcess(suanli_bin, default_model, "--max-queue", "4000", "--max-seqs", "128", "--kv-memory",
                      "128MiB", "--spec-ngram", "4", "--spec-max-step-tokens", "256")
    try:
        check_load(s, 300, repeat=True)
        assert s.metrics()["suanli:spec_decode_accepted_tokens_total"] > 0
    finally:
        assert s.stop() == 0


def check_load(server, n_clients, repeat):
    t0 = time.time()
    stats, errors = asyncio.run(run_load(server.port, n_clients=n_clients, repeat=repeat))
    elapsed = time.time() - t0
    print(f"\n{n_clients} clients in {elapsed:.1f} s: {stats}")
    assert not errors, errors[:3]
    assert stats["status"] == {}, stats  # nothing refused: the queue holds them all
    assert stats["completed"] + stats["disconnected"] == n_clients
    assert stats["disconnected"] >= n_clients * DISCONNECT_FRACTION / 2
    assert server.health() == 200
    end = time.time() + 60
    while time.time() < end:
        m = server.metrics()
        running = sum(v for k, v in m.items() if k.startswith("suanli:requests_running"))
        waiting = sum(v for k, v in m.items() if k.startswith("suanli:requests_waiting"))
        if running == 0 and waiting == 0 and m["suanli:kv_cache_blocks_used"] == 0:
            break
        time.sleep(0.2)
    assert running == 0 and waiting == 0
    assert m["suanli:kv_cache_blocks_used"] == 0, "leaked KV blocks"
    assert m["suanli:kv_cache_usage_ratio"] == 0
