"""End-to-end tests of `suanli serve`: a real server process on a free port,
the official openai client, raw HTTP for SSE framing, malformed input,
disconnects, overload and SIGTERM drain (docs/server.md)."""

import json
import signal
import socket
import subprocess
import threading
import time

import pytest

from server_util import ServerProcess

openai = pytest.importorskip("openai")


@pytest.fixture(scope="module")
def server(suanli_bin, default_model):
    s = ServerProcess(suanli_bin, default_model, "--max-queue", "2000")
    yield s
    assert s.stop() == 0


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0, timeout=120)


CHAT = [{"role": "system", "content": "You are brief."}, {"role": "user", "content": "Name a colour."}]


def wait_for(pred, timeout=30.0, step=0.1):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(step)
    return pred()


# --- the official openai client ---------------------------------------------


def test_openai_chat_completion(client):
    r = client.chat.completions.create(model="any", messages=CHAT, max_tokens=8, temperature=0)
    assert r.id.startswith("chatcmpl-")
    assert r.object == "chat.completion"
    assert len(r.choices) == 1
    c = r.choices[0]
    assert c.message.role == "assistant"
    assert isinstance(c.message.content, str) and c.message.content
    assert c.finish_reason in ("stop", "length")
    assert r.usage.prompt_tokens > 0
    assert 0 < r.usage.completion_tokens <= 8
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens


def test_openai_chat_greedy_is_deterministic_and_stream_matches(client):
    whole = client.chat.completions.create(model="m", messages=CHAT, max_tokens=12, temperature=0)
    stream = client.chat.completions.create(
        model="m", messages=CHAT, max_tokens=12, temperature=0, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    ids = {ch.id for ch in chunks}
    assert len(ids) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert text == whole.choices[0].message.content
    finishes = [ch.choices[0].finish_reason for ch in chunks if ch.choices and ch.choices[0].finish_reason]
    assert finishes == [whole.choices[0].finish_reason]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == whole.usage.completion_tokens


def test_openai_chat_n2_and_logprobs(client):
    r = client.chat.completions.create(
        model="m", messages=CHAT, max_tokens=5, n=2, temperature=1.0, seed=7, logprobs=True, top_logprobs=3
    )
    assert [c.index for c in r.choices] == [0, 1]
    for c in r.choices:
        assert c.logprobs is not None and len(c.logprobs.content) >= 1
        for entry in c.logprobs.content:
            assert entry.logprob <= 0
            assert len(entry.top_logprobs) == 3
            assert entry.bytes == list(entry.token.encode("utf-8", "surrogateescape")) or entry.bytes


def test_integral_float_seed_is_the_same_seed(client):
    # JavaScript clients send every number as a double: 7.0 is seed 7 (the
    # Python client sends 7.0 as written).
    def gen(seed):
        r = client.completions.create(model="m", prompt="Once upon a time", max_tokens=8, temperature=1.0, seed=seed)
        return r.choices[0].text
    assert gen(7.0) == gen(7)
    assert gen(2.0 ** 63) == gen(2 ** 63)  # the largest magnitudes, as the integer form takes them
    with pytest.raises(openai.BadRequestError):
        gen(2.0 ** 64)


def test_openai_chat_seed_reproducible(client):
    a = client.chat.completions.create(model="m", messages=CHAT, max_tokens=10, temperature=1.0, seed=123)
    b = client.chat.completions.create(model="m", messages=CHAT, max_tokens=10, temperature=1.0, seed=123)
    assert a.choices[0].message.content == b.choices[0].message.content


def test_openai_completion_and_stop(client):
    r = client.completions.create(model="m", prompt="1, 2, 3, 4,", max_tokens=12, temperature=0)
    assert r.id.startswith("cmpl-") and r.object == "text_completion"
    text = r.choices[0].text
    assert text
    # Stop at the first comma the greedy continuation produces: never emitted.
    if "," in text:
        s = client.completions.create(model="m", prompt="1, 2, 3, 4,", max_tokens=12, temperature=0, stop=[","])
        assert s.choices[0].text == text[: text.index(",")]
        assert s.choices[0].finish_reason == "stop"


def test_openai_completion_stream_n2_logprobs(client):
    stream = client.completions.create(
        model="m", prompt="Once upon a time", max_tokens=4, n=2, stream=True, logprobs=2, temperature=0.7, seed=3
    )
    by_index = {0: "", 1: ""}
    finished = set()
    for ch in stream:
        for c in ch.choices:
            by_index[c.index] += c.text
            if c.finish_reason:
                finished.add(c.index)
            if c.logprobs and c.logprobs.tokens:
                assert len(c.logprobs.top_logprobs[0]) == 2
    assert finished == {0, 1}
    assert all(by_index.values())


def test_openai_completion_token_ids_and_batch(client, server):
    _, _, body = server.request("POST", "/tokenize", {"prompt": "The capital of France is"})
    ids = json.loads(body)["tokens"]
    r = client.completions.create(model="m", prompt=[ids, "The capital of France is"], max_tokens=3, temperature=0)
    assert len(r.choices) == 2
    assert r.choices[0].text == r.choices[1].text


def test_logit_bias_bans_and_forces_tokens(client, server):
    prompt = "The capital of France is"

    def first_token(**kw):
        r = client.completions.create(model="m", prompt=prompt, max_tokens=1, temperature=0, logprobs=0, **kw)
        return r.choices[0].logprobs.tokens[0]

    first = first_token()
    _, _, body = server.request("POST", "/tokenize", {"prompt": first, "add_special": False})
    ids = json.loads(body)["tokens"]
    if len(ids) != 1:
        pytest.skip(f"the greedy first token {first!r} does not tokenize back to one id")
    # Banning the greedy first token changes the first token.
    assert first_token(logit_bias={str(ids[0]): -100}) != first
    # +100 forces a token, under sampling too.
    _, _, body = server.request("POST", "/tokenize", {"prompt": " banana", "add_special": False})
    forced = json.loads(body)["tokens"][-1]
    r = client.completions.create(model="m", prompt=prompt, max_tokens=5, temperature=1.0, seed=3,
                                  logit_bias={str(forced): 100})
    _, _, body = server.request("POST", "/detokenize", {"tokens": [forced] * 5})
    assert r.choices[0].text == json.loads(body)["prompt"]
    # Malformed biases are 400s naming the parameter.
    too_many = {str(i): 1 for i in range(1025)}
    for bad in ({"abc": 1}, {"-1": 1}, {"1": 101}, {"1": "x"}, {"99999999": 1}, [1, 2], {"07": 1}, too_many):
        got, _, data = server.request("POST", "/v1/completions", {"prompt": prompt, "max_tokens": 1, "logit_bias": bad})
        assert got == 400, (bad, data)
        assert json.loads(data)["error"]["param"] == "logit_bias"


def test_response_format_json_object(client, server):
    ask = [{"role": "user", "content": "Describe a cat with its name, age and colour."}]
    done = 0
    for seed in range(4):
        r = client.chat.completions.create(model="m", messages=ask, max_tokens=120, seed=seed,
                                           temperature=0 if seed == 0 else 1.0,
                                           response_format={"type": "json_object"})
        c = r.choices[0]
        if c.finish_reason == "stop":
            assert isinstance(json.loads(c.message.content), dict), c.message.content
            done += 1
        else:
            assert c.message.content.lstrip().startswith("{"), c.message.content
    assert done > 0
    # Streamed deltas join to the same object as the whole response (greedy).
    whole = client.chat.completions.create(model="m", messages=ask, max_tokens=120, temperature=0,
                                           response_format={"type": "json_object"})
    parts = client.chat.completions.create(model="m", messages=ask, max_tokens=120, temperature=0, stream=True,
                                           response_format={"type": "json_object"})
    assert "".join(ch.choices[0].delta.content or "" for ch in parts if ch.choices) == whole.choices[0].message.content
    # text is the default; json_schema is refused rather than ignored.
    ok = client.chat.completions.create(model="m", messages=ask, max_tokens=2, response_format={"type": "text"})
    assert ok.choices[0].message.content is not None
    for bad in ({"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "string"}}},
                {"type": "json_schema", "json_schema": {"name": "x"}},
                {"type": "json_schema", "json_schema": {"name": "x", "schema": {
                    "type": "object", "properties": {"a": {"type": "string", "pattern": "^x"}}}}},
                {"type": "yaml"}, "json_object", {"type": 3}):
        got, _, data = server.request("POST", "/v1/chat/completions",
                                      {"messages": ask, "max_tokens": 2, "response_format": bad})
        assert got == 400, (bad, data)
        assert json.loads(data)["error"]["param"] == "response_format"
    got, _, data = server.request("POST", "/v1/chat/completions", {"messages": ask, "max_tokens": 2, "ignore_eos": True,
                                                                 "response_format": {"type": "json_object"}})
    assert got == 400, data


PERSON_SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "age": {"type": "integer"},
        "colour": {"enum": ["black", "white", "ginger", "grey"]},
        "toys": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
        "owner": {"anyOf": [{"$ref": "#/$defs/Owner"}, {"type": "null"}]},
        "weight": {"type": ["number", "null"]},
    },
    "required": ["name", "age", "colour"],
    "additionalProperties": False,
    "$defs": {"Owner": {"type": "object", "properties": {"first": {"type": "string"}, "last": {"type": "string"}},
                        "required": ["last"]}},
}


def test_response_format_json_schema_outputs_validate(client):
    # Every output that ends with `stop` validates under the schema (the
    # jsonschema package: an independent validator) with its properties in
    # the schema's order; a `length` cut leaves a prefix.
    jsonschema = pytest.importorskip("jsonschema")
    ask = [{"role": "user", "content": "Describe a cat."}]
    fmt = {"type": "json_schema", "json_schema": {"name": "cat", "schema": PERSON_SCHEMA, "strict": True}}
    order = list(PERSON_SCHEMA["properties"])
    done = 0
    for seed in range(6):
        r = client.chat.completions.create(model="m", messages=ask, max_tokens=150, seed=seed,
                                           temperature=0 if seed == 0 else 1.2, response_format=fmt, n=2)
        for c in r.choices:
            if c.finish_reason != "stop":
                assert c.message.content.lstrip().startswith("{"), c.message.content
                continue
            obj = json.loads(c.message.content)
            jsonschema.validate(obj, PERSON_SCHEMA)
            keys = list(obj)
            assert keys == sorted(keys, key=order.index), keys
            done += 1
    assert done > 0


def test_json_schema_hostile_shapes_get_400s(server):
    # Raw bodies: duplicate keys (two JSON parsers may keep different ones),
    # dangling $refs, deep nesting, huge enums. Each is a 400 or a 200,
    # never a crash, and the server stays up.
    ask = '"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4'
    good = '{"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}'
    deep = '{"type": "object", "properties": {"a": ' * 40 + '{}' + '}}' * 40
    bodies = [
        '{' + ask + ', "response_format": ' + good + ', "response_format": 5}',
        '{' + ask + ', "response_format": 5, "response_format": ' + good + '}',
        '{' + ask + ', "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": '
        '{"type": "object", "properties": {"a": {"$ref": "#/$defs/P"}}, "$defs": 5}}}}',
        '{' + ask + ', "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": ' + deep + '}}}',
        '{' + ask + ', "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": '
        '{"type": "object", "properties": {"a": {"enum": ' + json.dumps(list(range(100))) + '}}}}}}',
    ]
    for b in bodies:
        got, _, data = server.request("POST", "/v1/chat/completions", b)
        assert got in (200, 400), (got, data)
    assert server.health() == 200


def test_completion_without_max_tokens_stops_at_16(server):
    got, _, data = server.request("POST", "/v1/completions", {"prompt": "Hi", "ignore_eos": True}, timeout=120)
    assert got == 200, data
    body = json.loads(data)
    assert body["usage"]["completion_tokens"] == 16
    assert body["choices"][0]["finish_reason"] == "length"


def test_models_retrieve_served_id_and_404_for_others(server, client):
    served = client.models.list().data[0].id
    m = client.models.retrieve(served)
    assert m.id == served and m.object == "model"
    with pytest.raises(openai.NotFoundError) as e:
        client.models.retrieve("org/not-" + served)  # '/' travels as %2F
    err = e.value.body
    assert err["code"] == "model_not_found" and err["param"] == "model" and "org/not-" in err["message"]


def test_assistant_content_null_is_accepted(client):
    history = [
        {"role": "user", "content": "What is 6 x 7?"},
        {"role": "assistant", "content": None,
         "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "mul", "arguments": '{"a": 6, "b": 7}'}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "42"},
        {"role": "assistant", "content": None, "function_call": {"name": "mul", "arguments": "{}"}},
        {"role": "assistant", "content": None},
        {"role": "user", "content": "And so?"},
    ]
    r = client.chat.completions.create(model="m", messages=history, max_tokens=2)
    assert r.choices[0].message.role == "assistant"


def test_models_tokenize_detokenize(server, client):
    models = client.models.list()
    assert len(models.data) == 1 and models.data[0].id
    status, _, body = server.request("POST", "/tokenize", {"prompt": "Hello world"})
    assert status == 200
    tok = json.loads(body)
    assert tok["count"] == len(tok["tokens"]) > 0
    status, _, body = server.request("POST", "/detokenize", {"tokens": tok["tokens"]})
    assert status == 200 and json.loads(body)["prompt"] == "Hello world"
    status, _, body = server.request("POST", "/tokenize", {"messages": CHAT})
    assert status == 200 and json.loads(body)["count"] > 5


# --- raw HTTP: SSE framing ---------------------------------------------------


def read_sse_raw(port, body, timeout=60):
    """Sends one streaming request with a raw socket; returns the response head
    and the de-chunked body text."""
    payload = json.dumps(body).encode()
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode()
        + payload
    )
    data = b""
    while True:
        part = s.recv(65536)
        if not part:
            break
        data += part
    s.close()
    head, _, rest = data.partition(b"\r\n\r\n")
    assert b"transfer-encoding: chunked" in head.lower()
    out = b""
    while True:
        line, _, rest = rest.partition(b"\r\n")
        n = int(line, 16)
        if n == 0:
            break
        out += rest[:n]
        assert rest[n : n + 2] == b"\r\n"
        rest = rest[n + 2 :]
    return head.decode(), out.decode()


def test_sse_framing_exact(server):
    head, text = read_sse_raw(
        server.port,
        {"messages": CHAT, "max_tokens": 5, "stream": True, "stream_options": {"include_usage": True}},
    )
    assert head.startswith("HTTP/1.1 200")
    assert "text/event-stream" in head.lower()
    assert text.endswith("data: [DONE]\n\n")
    events = text.split("\n\n")
    assert events[-1] == ""
    events = events[:-1]
    for e in events:
        assert e.startswith("data: ") and "\n" not in e
    payloads = [json.loads(e[len("data: ") :]) for e in events[:-1]]
    assert events[-1] == "data: [DONE]"
    assert len({p["id"] for p in payloads}) == 1
    assert all(p["object"] == "chat.completion.chunk" for p in payloads)
    assert payloads[0]["choices"][0]["delta"]["role"] == "assistant"
    choice_chunks = [p for p in payloads if p["choices"]]
    finish = [p["choices"][0]["finish_reason"] for p in choice_chunks]
    assert all(f is None for f in finish[:-1]) and finish[-1] in ("stop", "length")
    usage = payloads[-1]
    assert usage["choices"] == [] and usage["usage"]["completion_tokens"] >= 1
    assert "cached_tokens" in usage["usage"]["prompt_tokens_details"]


def test_keep_alive_serves_several_requests_on_one_connection(server):
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    for _ in range(3):
        conn.request("POST", "/v1/completions", body=json.dumps({"prompt": "Hi", "max_tokens": 2}))
        r = conn.getresponse()
        assert r.status == 200
        json.loads(r.read())
    conn.close()


# --- malformed input: right status, OpenAI error body, server stays up -------

BIG = 10**12
MALFORMED = [
    ("invalid_json", "/v1/chat/completions", b"{not json", 400, None),
    ("not_object", "/v1/chat/completions", b"[1,2]", 400, None),
    ("invalid_utf8", "/v1/completions", b'{"prompt": "\xff\xfe", "max_tokens": 1}', 400, None),
    ("messages_null", "/v1/chat/completions", {"messages": None}, 400, "messages"),
    ("messages_empty", "/v1/chat/completions", {"messages": []}, 400, "messages"),
    ("messages_wrong_type", "/v1/chat/completions", {"messages": "hi"}, 400, "messages"),
    ("unknown_role", "/v1/chat/completions", {"messages": [{"role": "wizard", "content": "x"}]}, 400, "messages[0].role"),
    ("content_wrong_type", "/v1/chat/completions", {"messages": [{"role": "user", "content": 5}]}, 400, "messages[0].content"),
    ("echo_with_logprobs", "/v1/completions", {"prompt": "x", "echo": True, "logprobs": 1}, 400, "echo"),
    ("content_null_user", "/v1/chat/completions", {"messages": [{"role": "user", "content": None}]}, 400, "messages[0].content"),
    ("image_part", "/v1/chat/completions", {"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}, 400, "messages[0].content[0].type"),
    ("max_tokens_negative", "/v1/completions", {"prompt": "x", "max_tokens": -5}, 400, "max_tokens"),
    ("max_tokens_zero", "/v1/completions", {"prompt": "x", "max_tokens": 0}, 400, "max_tokens"),
    ("max_tokens_enormous", "/v1/completions", {"prompt": "x", "max_tokens": BIG}, 400, "max_tokens"),
    ("max_tokens_over_context", "/v1/completions", {"prompt": "x", "max_tokens": 10**6}, 400, "prompt"),
    ("max_completion_tokens_string", "/v1/chat/completions", {"messages": CHAT, "max_completion_tokens": "5"}, 400, "max_completion_tokens"),
    ("n_zero", "/v1/completions", {"prompt": "x", "n": 0}, 400, "n"),
    ("n_enormous", "/v1/completions", {"prompt": "x", "n": BIG}, 400, "n"),
    ("top_logprobs_enormous", "/v1/chat/completions", {"messages": CHAT, "logprobs": True, "top_logprobs": 1000}, 400, "top_logprobs"),
    ("top_logprobs_negative", "/v1/chat/completions", {"messages": CHAT, "logprobs": True, "top_logprobs": -1}, 400, "top_logprobs"),
    ("top_logprobs_without_logprobs", "/v1/chat/completions", {"messages": CHAT, "top_logprobs": 2}, 400, "top_logprobs"),
    ("temperature_high", "/v1/completions", {"prompt": "x", "temperature": 5}, 400, "temperature"),
    ("temperature_string", "/v1/completions", {"prompt": "x", "temperature": "hot"}, 400, "temperature"),
    ("top_p_zero", "/v1/completions", {"prompt": "x", "top_p": 0}, 400, "top_p"),
    ("min_p_high", "/v1/completions", {"prompt": "x", "min_p": 1.5}, 400, "min_p"),
    ("presence_penalty_high", "/v1/completions", {"prompt": "x", "presence_penalty": 3}, 400, "presence_penalty"),
    ("repetition_penalty_zero", "/v1/completions", {"prompt": "x", "repetition_penalty": 0}, 400, "repetition_penalty"),
    ("stop_wrong_type", "/v1/completions", {"prompt": "x", "stop": 5}, 400, "stop"),
    ("stop_too_many", "/v1/completions", {"prompt": "x", "stop": [str(i) for i in range(40)]}, 400, "stop"),
    ("seed_float", "/v1/completions", {"prompt": "x", "seed": 1.5}, 400, "seed"),
    ("stream_string", "/v1/completions", {"prompt": "x", "stream": "yes"}, 400, "stream"),
    ("prompt_missing", "/v1/completions", {"max_tokens": 3}, 400, "prompt"),
    ("prompt_empty_list", "/v1/completions", {"prompt": []}, 400, "prompt"),
    ("prompt_wrong_type", "/v1/completions", {"prompt": {"a": 1}}, 400, "prompt"),
    ("token_id_out_of_range", "/v1/completions", {"prompt": [1, 2, 10**9]}, 400, "prompt"),
    ("token_id_negative", "/v1/completions", {"prompt": [[5, -1]]}, 400, "prompt"),
    ("prompt_over_context", "/v1/completions", {"prompt": [42] * 5000, "max_tokens": 1}, 400, "prompt"),
    ("unknown_scenario", "/v1/completions", {"prompt": "x", "scenario": "urgent"}, 400, "scenario"),
    ("model_wrong_type", "/v1/completions", {"prompt": "x", "model": 3}, 400, "model"),
    ("detokenize_bad_id", "/detokenize", {"tokens": [10**9]}, 400, "tokens"),
    # Deep nesting is refused before anything recurses over it (each of these
    # overflowed the stack, or took seconds of CPU, before the body's depth
    # was checked up front).
    ("deep_tools", "/v1/chat/completions",
     ('{"messages":[{"role":"user","content":"x"}],"max_tokens":4,"tools":[{"type":"function","function":'
      '{"name":"f","parameters":' + '{"a":' * 20000 + '1' + '}' * 20000 + '}}]}').encode(), 400, None),
    ("deep_tool_calls", "/v1/chat/completions",
     ('{"messages":[{"role":"user","content":"x"},{"role":"assistant","content":null,"tool_calls":'
      + '[' * 20000 + ']' * 20000 + '}]}').encode(), 400, None),
    ("deep_schema_const", "/v1/chat/completions",
     ('{"messages":[{"role":"user","content":"x"}],"max_tokens":4,"response_format":{"type":"json_schema",'
      '"json_schema":{"name":"x","schema":{"type":"object","properties":{"a":{"const":'
      + '[' * 100000 + ']' * 100000 + '}}}}}}').encode(), 400, None),
    ("deep_schema_properties", "/v1/chat/completions",
     ('{"messages":[{"role":"user","content":"x"}],"max_tokens":4,"response_format":{"type":"json_schema",'
      '"json_schema":{"name":"x","schema":' + '{"type":"object","properties":{"a":' * 30000
      + '{"type":"string"}' + '},"required":["a"]}' * 30000 + '}}}').encode(), 400, None),
    ("deep_unknown_field", "/v1/completions",
     ('{"prompt":"x","max_tokens":1,"extra":' + '[' * 100000 + ']' * 100000 + '}').encode(), 400, None),
    ("schema_const_past_limit", "/v1/chat/completions",
     {"messages": CHAT, "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {
         "type": "object", "properties": {"a": {"const": json.loads("[" * 40 + "]" * 40)}}}}}},
     400, "response_format"),
    ("tools_not_objects", "/v1/chat/completions", {"messages": CHAT, "tools": [1]}, 400, "tools[0]"),
    ("tools_no_name", "/v1/chat/completions",
     {"messages": CHAT, "tools": [{"type": "function", "function": {"parameters": {}}}]}, 400, "tools[0].function.name"),
    ("tool_calls_not_objects", "/v1/chat/completions",
     {"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": None, "tool_calls": [1]}]},
     400, "messages[1].tool_calls[0]"),
]


@pytest.mark.parametrize("name,path,body,status,param", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_input_gets_openai_error(server, name, path, body, status, param):
    got, headers, data = server.request("POST", path, body, headers={"Content-Type": "application/json"})
    assert got == status, data
    err = json.loads(data)["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert err["message"] and err["type"] == "invalid_request_error"
    if param is not None:
        assert err["param"] == param
    if name == "prompt_over_context":
        assert "exceeds the context length" in err["message"]
        assert "5000" in err["message"] and "4096" in err["message"]
    assert server.health() == 200


def test_oversized_body_gets_413(server):
    body = json.dumps({"prompt": "x" * (5 << 20)})
    got, _, data = server.request("POST", "/v1/completions", body)
    assert got == 413
    assert "larger than the limit" in json.loads(data)["error"]["message"]
    assert server.health() == 200


def test_unknown_path_and_wrong_method(server):
    got, _, data = server.request("GET", "/v1/nothing")
    assert got == 404 and json.loads(data)["error"]["message"]
    got, headers, data = server.request("GET", "/v1/chat/completions")
    assert got == 405 and headers.get("allow") == "POST"
    got, _, _ = server.request("POST", "/health", "{}")
    assert got == 405
    assert server.health() == 200


def test_garbage_http_gets_400_and_server_stays_up(server):
    s = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    s.sendall(b"THIS IS NOT HTTP\r\n\r\n")
    data = s.recv(4096)
    s.close()
    assert data.startswith(b"HTTP/1.1 400")
    assert server.health() == 200


def test_scenario_header_and_metrics(server):
    before = server.metrics().get('suanli:requests_total{scenario="batch",finish_reason="length"}', 0)
    got, _, _ = server.request(
        "POST", "/v1/completions", {"prompt": "Hi", "max_tokens": 2, "ignore_eos": True}, headers={"X-Suanli-Scenario": "batch"}
    )
    assert got == 200
    m = server.metrics()
    assert m['suanli:requests_total{scenario="batch",finish_reason="length"}'] == before + 1
    for name in [
        "suanli:kv_cache_usage_ratio",
        "suanli:prefix_cache_hit_ratio",
        "suanli:preemptions_total",
        'suanli:prompt_tokens_total{scenario="batch"}',
        'suanli:generation_tokens_total{scenario="batch"}',
        'suanli:requests_running{scenario="interactive"}',
        'suanli:requests_waiting{scenario="realtime"}',
        'suanli:time_to_first_token_seconds_count{scenario="batch"}',
        'suanli:time_per_output_token_seconds_bucket{scenario="batch",le="+Inf"}',
        'suanli:e2e_request_latency_seconds_sum{scenario="batch"}',
        'suanli:queue_time_seconds_count{scenario="batch"}',
    ]:
        assert name in m, name
    got, _, _ = server.request("POST", "/v1/completions", {"prompt": "Hi"}, headers={"X-Suanli-Scenario": "nope"})
    assert got == 400


def test_status_endpoint(server):
    got, _, data = server.request("GET", "/v1/status")
    assert got == 200
    st = json.loads(data)
    assert st["ready"] and st["model"] and st["device"]
    assert [s["name"] for s in st["scenarios"]] == ["realtime", "interactive", "batch"]
    assert 0 <= st["kv_cache"]["usage"] <= 1
    assert len(st["tokens_per_second"]) == 300
    assert st["speculative"]["num_tokens"] == 0  # off unless --spec-ngram


# --- reliability ---------------------------------------------------------------


def test_disconnect_mid_stream_frees_request_and_blocks(server):
    assert wait_for(lambda: server.metric_sum("suanli:requests_running") == 0)
    baseline = server.metrics()["suanli:kv_cache_blocks_used"]
    body = json.dumps({"prompt": "Tell me a long story.", "max_tokens": 3000, "stream": True, "ignore_eos": True}).encode()
    socks = []
    for _ in range(4):
        s = socket.create_connection(("127.0.0.1", server.port), timeout=30)
        s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\n" + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        got = b""
        while got.count(b"data: ") < 3:
            got += s.recv(65536)
        socks.append(s)
    assert server.metric_sum("suanli:requests_running") >= 1
    for s in socks:
        s.close()
    assert wait_for(lambda: server.metric_sum("suanli:requests_running") == 0, timeout=20)
    assert wait_for(lambda: server.metrics()["suanli:kv_cache_blocks_used"] == baseline, timeout=20)
    assert server.metrics()['suanli:requests_total{scenario="interactive",finish_reason="abort"}'] >= 4
    assert server.health() == 200


def test_speculative_decoding_gives_the_same_output(suanli_bin, default_model, client):
    """--spec-ngram drafts tokens by prompt lookup and keeps them only where
    the drawn token equals the draft: the same text, tokens and logprobs as
    the plain server, greedy and seeded, streamed or not (docs/engine.md)."""
    para = ("The Great Barrier Reef is the worlds largest coral reef system, composed of over 2,900 individual "
            "reefs and 900 islands streching for over 2,300 kilometres.")
    msgs = [{"role": "user", "content": "Correct the spelling and write the text out in full:\n\n" + para}]
    s = ServerProcess(suanli_bin, default_model, "--spec-ngram", "4")
    try:
        fast = openai.OpenAI(base_url=s.url + "/v1", api_key="unused", max_retries=0, timeout=120)
        for kw in ({"temperature": 0}, {"temperature": 0.8, "seed": 11, "logprobs": True, "top_logprobs": 2}):
            want = client.chat.completions.create(model="m", messages=msgs, max_tokens=80, **kw).choices[0]
            got = fast.chat.completions.create(model="m", messages=msgs, max_tokens=80, **kw).choices[0]
            assert got.message.content == want.message.content
            if kw.get("logprobs"):
                assert [(t.token, t.logprob) for t in got.logprobs.content] == \
                       [(t.token, t.logprob) for t in want.logprobs.content]
            streamed = "".join(c.choices[0].delta.content or "" for c in fast.chat.completions.create(
                model="m", messages=msgs, max_tokens=80, stream=True, **kw) if c.choices)
            assert streamed == want.message.content
        m = s.metrics()
        st = json.loads(s.request("GET", "/v1/status")[2])["speculative"]
        assert st["num_tokens"] == 4 and st["accepted_tokens"] == m["suanli:spec_decode_accepted_tokens_total"]
        assert m["suanli:spec_decode_accepted_tokens_total"] > 0
        assert m["suanli:spec_decode_draft_tokens_total"] >= m["suanli:spec_decode_accepted_tokens_total"]
    finally:
        assert s.stop() == 0
    bad = subprocess.run([suanli_bin, "serve", "-m", default_model, "--port", "0", "--spec-ngram", "99"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and "num_tokens must be 0 to 16" in bad.stderr


def test_api_key(suanli_bin, default_model):
    s = ServerProcess(suanli_bin, default_model, env={"SUANLI_API_KEY": "sekret"})
    try:
        got, _, data = s.request("GET", "/v1/models")
        assert got == 401 and json.loads(data)["error"]["code"] == "invalid_api_key"
        got, _, _ = s.request("GET", "/v1/models", headers={"Authorization": "Bearer wrong"})
        assert got == 401
        got, _, _ = s.request("GET", "/v1/models", headers={"Authorization": "bearer sekret"})
        assert got == 200  # the scheme is case-insensitive
        got, _, _ = s.request("GET", "/metrics")
        assert got == 401
        assert s.health() == 200  # open for probes
        assert s.request("GET", "/")[0] == 200
        c = openai.OpenAI(base_url=s.url + "/v1", api_key="sekret", max_retries=0)
        assert c.completions.create(model="m", prompt="Hi", max_tokens=2).choices[0].text is not None
    finally:
        assert s.stop() == 0


def test_overload_gets_429_with_retry_after_never_hangs(suanli_bin, default_model):
    s = ServerProcess(suanli_bin, default_model, "--max-queue", "1", "--max-seqs", "1")
    try:
        results = []
        lock = threading.Lock()

        def one():
            got, headers, data = s.request("POST", "/v1/completions", {"prompt": "Hello", "max_tokens": 16, "ignore_eos": True}, timeout=120)
            with lock:
                results.append((got, headers, data))

        threads = [threading.Thread(target=one) for _ in range(24)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=150)
        assert not any(t.is_alive() for t in threads), "a request hung"
        statuses = sorted(r[0] for r in results)
        assert set(statuses) <= {200, 429, 503}
        assert 200 in statuses and 429 in statuses
        for got, headers, data in results:
            if got in (429, 503):
                assert int(headers["retry-after"]) >= 1
                assert json.loads(data)["error"]["type"] in ("rate_limit_error", "service_unavailable")
        assert s.health() == 200
    finally:
        assert s.stop() == 0


def test_sigterm_drains_then_aborts_and_exits_0(suanli_bin, default_model):
    s = ServerProcess(suanli_bin, default_model, "--shutdown-timeout", "1")
    body = json.dumps({"prompt": "Count forever:", "max_tokens": 3000, "stream": True, "ignore_eos": True}).encode()
    sock = socket.create_connection(("127.0.0.1", s.port), timeout=60)
    sock.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\n" + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    got = b""
    while got.count(b"data: ") < 2:
        got += sock.recv(65536)
    s.signal(signal.SIGTERM)
    # New work is refused while draining.
    time.sleep(0.2)
    try:
        status, headers, _ = s.request("POST", "/v1/completions", {"prompt": "x", "max_tokens": 1}, timeout=10)
        assert status == 503 and "retry-after" in headers
    except ConnectionError:
        pass  # already closed: also a refusal
    while True:
        part = sock.recv(65536)
        if not part:
            break
        got += part
    sock.close()
    text = got.decode(errors="replace")
    assert '"finish_reason":"abort"' in text
    assert "data: [DONE]" in text
    assert s.proc.wait(timeout=30) == 0


def test_sigterm_lets_short_requests_finish(suanli_bin, default_model):
    s = ServerProcess(suanli_bin, default_model, "--shutdown-timeout", "60")
    result = {}

    def one():
        result["r"] = s.request("POST", "/v1/completions", {"prompt": "Hi", "max_tokens": 40, "ignore_eos": True}, timeout=120)

    t = threading.Thread(target=one)
    t.start()
    time.sleep(0.3)
    s.signal(signal.SIGTERM)
    t.join(timeout=120)
    status, _, data = result["r"]
    assert status == 200
    assert json.loads(data)["choices"][0]["finish_reason"] == "length"
    assert s.proc.wait(timeout=30) == 0


def test_request_timeout_ends_stream_with_abort(suanli_bin, default_model):
    s = ServerProcess(suanli_bin, default_model, "--request-timeout", "1", env={"SUANLI_IDLE_TIMEOUT": "30"})
    try:
        status, _, data = s.request(
            "POST", "/v1/completions", {"prompt": "Go on:", "max_tokens": 3000, "ignore_eos": True}, timeout=60
        )
        assert status == 200
        body = json.loads(data)
        assert body["choices"][0]["finish_reason"] == "abort"
        assert 0 < body["usage"]["completion_tokens"] < 3000
        assert s.health() == 200
    finally:
        assert s.stop() == 0
