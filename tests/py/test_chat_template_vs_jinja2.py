"""`suanli template` against Python jinja2 configured exactly as HF
transformers' apply_chat_template configures it.

For every template under tests/data/chat_templates plus the default model's
own, and a set of conversations (system/user/assistant/tool, multi-turn,
tool calls with arguments as a dict and as a JSON string, tool lists,
generation prompt on and off, thinking switches), the rendered prompt must
be byte-identical; where jinja2 raises (a template rejecting a conversation)
suanli must fail too (exit 1). A GGUF without tokenizer.chat_template falls
back to ChatML.
"""

import datetime
import json
import subprocess
from pathlib import Path

import pytest

jinja2 = pytest.importorskip("jinja2")
import jinja2.ext  # noqa: E402
import jinja2.sandbox  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_DIR = REPO_ROOT / "tests" / "data" / "chat_templates"
FIXED_DATE = datetime.datetime(2024, 7, 26)
FIXED_DATE_ARG = "2024-07-26"

# Must equal chatml_template() in src/model/chat_template/chat_template.cc.
CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
    "'<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


class TemplateRaised(Exception):
    pass


def hf_environment():
    """The environment of transformers.utils.chat_template_utils._compile_jinja_template."""

    def raise_exception(message):
        raise TemplateRaised(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(fmt):
        return FIXED_DATE.strftime(fmt)

    env = jinja2.sandbox.ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols]
    )
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def special_tokens(model_path):
    """bos/eos/unk/pad texts as apply_chat_template passes them (from the GGUF)."""
    gguf = pytest.importorskip("gguf")
    reader = gguf.GGUFReader(model_path)

    def field_value(name):
        f = reader.fields.get(name)
        if f is None:
            return None
        return f.contents()

    tokens = field_value("tokenizer.ggml.tokens")
    out = {}
    for which, key in (("bos", "bos_token"), ("eos", "eos_token"), ("unknown", "unk_token"), ("padding", "pad_token")):
        tid = field_value(f"tokenizer.ggml.{which}_token_id")
        if tid is not None and tokens is not None and 0 <= int(tid) < len(tokens):
            out[key] = tokens[int(tid)]
    return out, field_value("tokenizer.chat_template")


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "City name, e.g. \"Paris\""},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"], "description": "Unit"},
                "days": {"type": "integer", "description": "Forecast days"},
            },
            "required": ["city"],
        },
    },
}
SEARCH_TOOL = {
    "type": "function",
    "function": {
        "name": "search",
        "description": "Search the web — returns snippets.",
        "parameters": {
            "type": "object",
            "properties": {"query": {"type": "string", "description": "Query text"}},
            "required": ["query"],
        },
    },
}


def tool_call(args, name="get_weather", call_id="call12345"):
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": args}}


CONVERSATIONS = {
    "user_only": dict(messages=[{"role": "user", "content": "Hello!"}]),
    "system_user": dict(
        messages=[
            {"role": "system", "content": "You are a terse assistant."},
            {"role": "user", "content": "What is 2+2?"},
        ]
    ),
    "multi_turn": dict(
        messages=[
            {"role": "system", "content": "You are helpful."},
            {"role": "user", "content": "Hi there"},
            {"role": "assistant", "content": "Hello! How can I help?"},
            {"role": "user", "content": "Tell me a joke.\n  With spaces  "},
        ]
    ),
    "multi_turn_no_system": dict(
        messages=[
            {"role": "user", "content": "Ping"},
            {"role": "assistant", "content": "Pong"},
            {"role": "user", "content": "Again, with \"quotes\" and 'apostrophes' and ünïcödé ✓ 你好"},
        ]
    ),
    "ends_with_assistant": dict(
        messages=[
            {"role": "user", "content": "Say yes"},
            {"role": "assistant", "content": "Yes."},
        ]
    ),
    "thinking": dict(
        messages=[
            {"role": "user", "content": "Think first: 3*7?"},
            {"role": "assistant", "content": "<think>\n3*7 is 21.\n</think>\n\n21"},
            {"role": "user", "content": "And 4*5?"},
        ]
    ),
    "thinking_disabled": dict(
        messages=[{"role": "user", "content": "Quick answer please"}],
        extra={"enable_thinking": False},
    ),
    "tools_no_call": dict(
        messages=[
            {"role": "system", "content": "Use tools when needed."},
            {"role": "user", "content": "What's the weather in Paris?"},
        ],
        tools=[WEATHER_TOOL, SEARCH_TOOL],
    ),
    "tools_no_system": dict(
        messages=[{"role": "user", "content": "Weather in Oslo?"}],
        tools=[WEATHER_TOOL],
    ),
    "tool_call_dict_args": dict(
        messages=[
            {"role": "system", "content": "Use tools when needed."},
            {"role": "user", "content": "What's the weather in Paris?"},
            {"role": "assistant", "content": "", "tool_calls": [tool_call({"city": "Paris", "unit": "celsius", "days": 2})]},
            {"role": "tool", "tool_call_id": "call12345", "name": "get_weather", "content": "{\"temp\": 21, \"sky\": \"clear\"}"},
        ],
        tools=[WEATHER_TOOL, SEARCH_TOOL],
    ),
    "tool_call_string_args": dict(
        messages=[
            {"role": "user", "content": "Weather in Rome?"},
            {"role": "assistant", "content": "", "tool_calls": [tool_call("{\"city\": \"Rome\"}")]},
            {"role": "tool", "tool_call_id": "call12345", "content": "sunny, 30C"},
            {"role": "assistant", "content": "It is sunny and 30C in Rome."},
            {"role": "user", "content": "Thanks!"},
        ],
        tools=[WEATHER_TOOL],
    ),
    "two_tool_calls": dict(
        messages=[
            {"role": "user", "content": "Weather in Paris and news about it?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    tool_call({"city": "Paris"}),
                    tool_call({"query": "Paris news"}, name="search", call_id="call67890"),
                ],
            },
            {"role": "tool", "tool_call_id": "call12345", "content": "rain"},
            {"role": "tool", "tool_call_id": "call67890", "content": "Nothing new."},
        ],
        tools=[WEATHER_TOOL, SEARCH_TOOL],
    ),
    "bad_alternation": dict(
        messages=[
            {"role": "user", "content": "one"},
            {"role": "user", "content": "two"},
        ]
    ),
}


def template_sources():
    out = {}
    for path in sorted(TEMPLATE_DIR.glob("*.jinja")):
        out[path.stem] = path
    return out


TEMPLATES = template_sources()


def render_jinja2(source, conv, add_generation_prompt, tokens):
    env = hf_environment()
    try:
        template = env.from_string(source)
        return template.render(
            messages=conv["messages"],
            tools=conv.get("tools"),
            documents=None,
            add_generation_prompt=add_generation_prompt,
            **tokens,
            **conv.get("extra", {}),
        )
    except Exception as e:  # noqa: BLE001 - any jinja2 failure means ours must fail too
        return e


def render_suanli(suanli_bin, model, template_path, conv, add_generation_prompt, tmp_path):
    messages = tmp_path / "messages.json"
    messages.write_text(json.dumps(conv["messages"], ensure_ascii=False), encoding="utf-8")
    cmd = [suanli_bin, "template", "-m", model, "--messages", str(messages), "--date", FIXED_DATE_ARG]
    if conv.get("tools") is not None:
        tools = tmp_path / "tools.json"
        tools.write_text(json.dumps(conv["tools"], ensure_ascii=False), encoding="utf-8")
        cmd += ["--tools", str(tools)]
    if conv.get("extra"):
        ctx = tmp_path / "context.json"
        ctx.write_text(json.dumps(conv["extra"]), encoding="utf-8")
        cmd += ["--context", str(ctx)]
    if template_path is not None:
        cmd += ["--template", str(template_path)]
    if not add_generation_prompt:
        cmd.append("--no-generation-prompt")
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)


def check(suanli_bin, model, source, template_path, conv, gen, tokens, tmp_path):
    expected = render_jinja2(source, conv, gen, tokens)
    proc = render_suanli(suanli_bin, model, template_path, conv, gen, tmp_path)
    if isinstance(expected, Exception):
        assert proc.returncode == 1, (
            f"jinja2 raised {type(expected).__name__}: {expected}, but suanli printed {proc.stdout.decode()!r}"
        )
        assert proc.stderr, "a failing render must say why on stderr"
        return
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout.decode("utf-8") == expected


@pytest.fixture(scope="session")
def model_tokens(default_model):
    return special_tokens(default_model)


@pytest.mark.parametrize("gen", [True, False], ids=["gen", "nogen"])
@pytest.mark.parametrize("conv_name", sorted(CONVERSATIONS))
@pytest.mark.parametrize("template_name", sorted(TEMPLATES))
def test_template_matches_jinja2(suanli_bin, default_model, model_tokens, template_name, conv_name, gen, tmp_path):
    tokens, _ = model_tokens
    path = TEMPLATES[template_name]
    source = path.read_text(encoding="utf-8")
    check(suanli_bin, default_model, source, path, CONVERSATIONS[conv_name], gen, tokens, tmp_path)


@pytest.mark.parametrize("gen", [True, False], ids=["gen", "nogen"])
@pytest.mark.parametrize("conv_name", sorted(CONVERSATIONS))
def test_default_model_template_matches_jinja2(suanli_bin, default_model, model_tokens, conv_name, gen, tmp_path):
    tokens, source = model_tokens
    assert source, "the default model carries tokenizer.chat_template"
    check(suanli_bin, default_model, source, None, CONVERSATIONS[conv_name], gen, tokens, tmp_path)


def test_model_without_template_falls_back_to_chatml(suanli_bin, tmp_path):
    gguf = pytest.importorskip("gguf")
    path = tmp_path / "no_template.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list(["<s>", "</s>", "a", "b"])
    writer.add_bos_token_id(0)
    writer.add_eos_token_id(1)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    conv = CONVERSATIONS["multi_turn"]
    for gen in (True, False):
        expected = render_jinja2(CHATML, conv, gen, {"bos_token": "<s>", "eos_token": "</s>"})
        proc = render_suanli(suanli_bin, str(path), None, conv, gen, tmp_path)
        assert proc.returncode == 0, proc.stderr.decode()
        assert proc.stdout.decode("utf-8") == expected


def test_template_syntax_error_exits_1_with_line_and_column(suanli_bin, default_model, tmp_path):
    bad = tmp_path / "bad.jinja"
    bad.write_text("hello\n{% if messages %}\n{{ messages[0] + }}\n{% endif %}", encoding="utf-8")
    proc = render_suanli(suanli_bin, default_model, bad, CONVERSATIONS["user_only"], True, tmp_path)
    assert proc.returncode == 1
    assert proc.stdout == b""
    assert b"line 3, column" in proc.stderr


def test_raise_exception_message_reaches_stderr(suanli_bin, default_model, tmp_path):
    path = TEMPLATES["google-gemma-2-2b-it"]
    proc = render_suanli(suanli_bin, default_model, path, CONVERSATIONS["system_user"], True, tmp_path)
    assert proc.returncode == 1
    assert b"System role not supported" in proc.stderr


def test_deeply_nested_messages_file_is_an_error_not_a_crash(suanli_bin, default_model, tmp_path):
    # 200,000 levels overflowed the stack (exit 139) before depth was checked.
    for deep in ("[" * 200000 + "]" * 200000, '{"a":' * 20000 + "1" + "}" * 20000):
        msgs = tmp_path / "deep.json"
        msgs.write_text('[{"role":"user","content":"x","extra":' + deep + "}]", encoding="utf-8")
        proc = subprocess.run([suanli_bin, "template", "-m", default_model, "--messages", str(msgs)],
                              capture_output=True, timeout=60)
        assert proc.returncode == 1, proc.stderr
        assert b"nested more than 256 levels" in proc.stderr
