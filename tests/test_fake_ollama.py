"""The fake Ollama server, driven by the real ``ollama`` client over real HTTP.

If these pass, the rest of the suite can trust that talking to ``FakeOllama``
is talking to something wire-compatible with Ollama.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator

import httpx
import ollama
import pytest

from tests.fakes.ollama import FakeOllama, Reply, ToolCall, by_system_prompt, hashed_embedding

USER = [{"role": "user", "content": "list the files please"}]
RUN_COMMAND_TOOL = {
    "type": "function",
    "function": {
        "name": "run_command",
        "description": "Run a shell command",
        "parameters": {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]},
    },
}


def make_client(url: str) -> ollama.Client:
    """The real client; ``verify=False`` only skips building an unused TLS context (~50 ms each)."""
    return ollama.Client(host=url, verify=False)


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b)) / (math.hypot(*a) * math.hypot(*b))


@pytest.fixture
def client(fake_ollama: FakeOllama) -> Iterator[ollama.Client]:
    with make_client(fake_ollama.url) as client:
        yield client


@pytest.fixture
async def aclient(fake_ollama: FakeOllama) -> AsyncIterator[ollama.AsyncClient]:
    async with ollama.AsyncClient(host=fake_ollama.url, verify=False) as client:
        yield client


# --------------------------------------------------------------------------- chat


def test_non_streaming_chat_returns_scripted_reply_with_metrics(fake_ollama: FakeOllama, client: ollama.Client) -> None:
    fake_ollama.script(Reply(content="hello there, friend"))

    response = client.chat(model="llama3.2", messages=USER)

    assert response.message.role == "assistant"
    assert response.message.content == "hello there, friend"
    assert response.done and response.done_reason == "stop"
    assert response.prompt_eval_count == 4  # words in the messages
    assert response.eval_count == 3  # words in the reply
    reported = (response.load_duration, response.prompt_eval_duration, response.eval_duration)
    assert all(value > 0 for value in reported)  # nanosecond fields filled in, as Ollama does
    assert min(response.load_duration, response.total_duration) == response.load_duration  # total includes load


def test_script_is_fifo_then_default_echo(fake_ollama: FakeOllama, client: ollama.Client) -> None:
    fake_ollama.script("first", Reply(content="second"))

    replies = [client.chat(model="llama3.2", messages=USER).message.content for _ in range(3)]

    assert replies == ["first", "second", "echo: list the files please"]
    assert fake_ollama.pending == 0


def test_responder_sees_the_request(fake_ollama: FakeOllama, client: ollama.Client) -> None:
    fake_ollama.responder = lambda req: Reply(content=f"{len(req['messages'])} messages to {req['model']}")

    response = client.chat(model="llama3.2:latest", messages=[*USER, {"role": "assistant", "content": "ok"}, *USER])

    assert response.message.content == "3 messages to llama3.2:latest"


def test_by_system_prompt_answers_as_the_agent_the_call_is_for(fake_ollama: FakeOllama, client: ollama.Client) -> None:
    fake_ollama.responder = by_system_prompt({"You are dev": "a dev answer", "You are ana": lambda req: Reply(content="ana")})

    def ask(system: str | None) -> str:
        messages = ([{"role": "system", "content": system}] if system else []) + USER
        return client.chat(model="llama3.2", messages=messages).message.content

    assert (ask("You are dev, be brief"), ask("You are ana"), ask(None)) == ("a dev answer", "ana", "echo: list the files please")


def test_a_failing_responder_is_reported_as_a_500(fake_ollama: FakeOllama, client: ollama.Client) -> None:
    fake_ollama.responder = lambda req: req["no such key"]

    with pytest.raises(ollama.ResponseError) as err:
        client.chat(model="llama3.2", messages=USER)

    assert err.value.status_code == 500 and "KeyError" in err.value.error


def test_streaming_chat_arrives_in_several_chunks(fake_ollama: FakeOllama, client: ollama.Client) -> None:
    text = "The quick brown fox jumps over the lazy dog."
    fake_ollama.script(Reply(content=text))

    parts = list(client.chat(model="llama3.2", messages=USER, stream=True))

    assert len(parts) >= 5
    assert "".join(p.message.content for p in parts) == text
    assert [p.done for p in parts] == [False] * (len(parts) - 1) + [True]
    final = parts[-1]
    assert final.done_reason == "stop" and final.eval_count == 9 and final.prompt_eval_count == 4


async def test_async_streaming_chat(fake_ollama: FakeOllama, aclient: ollama.AsyncClient) -> None:
    fake_ollama.script(Reply(content="streamed over asyncio", thinking="let me think"))

    parts = [part async for part in await aclient.chat(model="llama3.2", messages=USER, stream=True)]

    assert "".join(p.message.content for p in parts) == "streamed over asyncio"
    assert "".join(p.message.thinking or "" for p in parts) == "let me think"
    assert parts[-1].done


async def test_async_non_streaming_chat(aclient: ollama.AsyncClient) -> None:
    response = await aclient.chat(model="llama3.2", messages=USER)

    assert response.message.content == "echo: list the files please"


@pytest.mark.parametrize("stream", [False, True])
def test_tool_calls_are_parsed_by_the_client(fake_ollama: FakeOllama, client: ollama.Client, stream: bool) -> None:
    fake_ollama.script(Reply(tool_calls=[ToolCall("run_command", {"command": "ls"}), ToolCall("noop")]))

    result = client.chat(model="llama3.2", messages=USER, tools=[RUN_COMMAND_TOOL], stream=stream)
    calls = [c for part in result for c in part.message.tool_calls or []] if stream else result.message.tool_calls

    assert [(c.function.name, dict(c.function.arguments)) for c in calls] == [("run_command", {"command": "ls"}), ("noop", {})]
    assert fake_ollama.chat_requests()[0]["tools"][0]["function"]["name"] == "run_command"


def test_tools_on_a_model_without_tool_support_is_a_400(fake_ollama: FakeOllama, client: ollama.Client) -> None:
    fake_ollama.add_model("gemma:2b", capabilities=["completion"])

    with pytest.raises(ollama.ResponseError) as err:
        client.chat(model="gemma:2b", messages=USER, tools=[RUN_COMMAND_TOOL])

    assert err.value.status_code == 400
    assert err.value.error == "registry.ollama.ai/library/gemma:2b does not support tools"


def test_structured_output_content_is_returned_as_is(fake_ollama: FakeOllama, client: ollama.Client) -> None:
    schema = {"type": "object", "properties": {"answer": {"type": "integer"}}}
    fake_ollama.script("for the conversation")
    fake_ollama.script_structured('{"answer": 42}', '{"ok": true}')

    assert json.loads(client.chat(model="llama3.2", messages=USER, format=schema).message.content) == {"answer": 42}
    assert json.loads(client.chat(model="llama3.2", messages=USER, format="json").message.content) == {"ok": True}
    assert client.chat(model="llama3.2", messages=USER, format="json").message.content == "{}"
    assert client.chat(model="llama3.2", messages=USER).message.content == "for the conversation"
    assert [r["format"] for r in fake_ollama.structured_requests()] == [schema, "json", "json"]
    assert len(fake_ollama.chat_requests()) == 1


def test_empty_messages_only_loads_the_model(fake_ollama: FakeOllama, client: ollama.Client) -> None:
    fake_ollama.script("kept for later")

    response = client.chat(model="llama3.2", messages=[])

    assert response.done_reason == "load" and fake_ollama.pending == 1


# --------------------------------------------------------------------------- embeddings


def test_embed_batch_is_normalised_deterministic_and_semantic(client: ollama.Client) -> None:
    texts = ["the cat sat on the mat", "a cat sat on a mat", "quarterly revenue grew by ten percent"]

    first = client.embed(model="all-minilm", input=texts).embeddings
    again = client.embed(model="all-minilm", input=texts[0]).embeddings

    assert [len(v) for v in first] == [384, 384, 384]
    assert again == [first[0]]
    assert all(abs(math.hypot(*v) - 1) < 1e-5 for v in first)
    assert cosine(first[0], first[1]) > 0.5 > cosine(first[0], first[2])


async def test_embed_dimension_per_model_and_truncation(fake_ollama: FakeOllama, aclient: ollama.AsyncClient) -> None:
    fake_ollama.add_model("nomic-embed-text", embed_dim=768)

    full = await aclient.embed(model="nomic-embed-text:latest", input=["a", "b"])
    short = await aclient.embed(model="all-minilm", input="a", dimensions=64)

    assert [len(v) for v in full.embeddings] == [768, 768]
    assert len(short.embeddings[0]) == 64 and abs(math.hypot(*short.embeddings[0]) - 1) < 1e-5
    assert (await aclient.show("nomic-embed-text")).modelinfo["bert.embedding_length"] == 768


def test_hashed_embedding_of_empty_text_is_zero() -> None:
    assert hashed_embedding("", 8) == [0.0] * 8


# --------------------------------------------------------------------------- errors


def test_unknown_model_is_a_404_with_ollamas_wording(client: ollama.Client) -> None:
    with pytest.raises(ollama.ResponseError) as err:
        client.chat(model="mistral", messages=USER)

    assert err.value.status_code == 404
    assert err.value.error == 'model "mistral" not found, try pulling it first'


async def test_unknown_model_async_embed_and_show(aclient: ollama.AsyncClient) -> None:
    for call in (aclient.embed(model="nope", input="x"), aclient.show("nope")):
        with pytest.raises(ollama.ResponseError) as err:
            await call
        assert err.value.status_code == 404 and err.value.error == "model 'nope' not found"


def test_scripted_error_reply(fake_ollama: FakeOllama, client: ollama.Client) -> None:
    fake_ollama.script(Reply(error="boom", status=500), Reply(error="busy", status=503))

    with pytest.raises(ollama.ResponseError) as err:
        client.chat(model="llama3.2", messages=USER)
    assert (err.value.status_code, err.value.error) == (500, "boom")

    with pytest.raises(ollama.ResponseError) as err:
        next(client.chat(model="llama3.2", messages=USER, stream=True))
    assert (err.value.status_code, err.value.error) == (503, "busy")


def test_fail_next_does_not_consume_the_script(fake_ollama: FakeOllama, client: ollama.Client) -> None:
    fake_ollama.script("after the retry")
    fake_ollama.fail_next(2, status=500, error="runner died")

    for _ in range(2):
        with pytest.raises(ollama.ResponseError) as err:
            client.chat(model="llama3.2", messages=USER)
        assert (err.value.status_code, err.value.error) == (500, "runner died")
    assert client.list().models  # /api/tags is not an inference path: unaffected
    assert client.chat(model="llama3.2", messages=USER).message.content == "after the retry"


def test_mid_stream_error_and_hang_up(fake_ollama: FakeOllama, client: ollama.Client) -> None:
    fake_ollama.script(Reply(content="partial answer", stream_error="out of memory"), Reply(content="a b c d", hang_up_after=2))

    seen: list[str] = []
    with pytest.raises(ollama.ResponseError, match="out of memory"):
        for part in client.chat(model="llama3.2", messages=USER, stream=True):
            seen.append(part.message.content)
    assert "".join(seen) == "partial answer"

    seen.clear()
    with pytest.raises(httpx.RemoteProtocolError):
        for part in client.chat(model="llama3.2", messages=USER, stream=True):
            seen.append(part.message.content)
    assert seen == ["a", " b"]


# --------------------------------------------------------------------------- availability and timing


def test_down_refuses_connections_and_up_restores_the_same_port(fake_ollama: FakeOllama, client: ollama.Client) -> None:
    port = fake_ollama.port
    assert client.chat(model="llama3.2", messages=USER).done  # leaves a pooled keep-alive connection

    fake_ollama.down()
    with pytest.raises(ConnectionError):  # refused: a hung socket would end in a read timeout instead
        client.chat(model="llama3.2", messages=USER)

    fake_ollama.up()
    assert fake_ollama.port == port
    assert client.chat(model="llama3.2", messages=USER).message.content == "echo: list the files please"


async def test_down_and_up_with_the_async_client(fake_ollama: FakeOllama, aclient: ollama.AsyncClient) -> None:
    fake_ollama.down()
    with pytest.raises(ConnectionError):
        await aclient.chat(model="llama3.2", messages=USER)
    fake_ollama.up()
    assert (await aclient.chat(model="llama3.2", messages=USER)).done


def test_delay_holds_inference_and_never_the_health_endpoints(fake_ollama: FakeOllama, client: ollama.Client) -> None:
    """Order, not durations (timings belong in bench/): a health call made while a chat is held by
    ``delay_s`` answers before the chat's first chunk."""
    fake_ollama.delay_s = 1.0
    fake_ollama.chunk_delay_s = 0.05
    fake_ollama.script("one two three")
    seen: list[str] = []
    chat = threading.Thread(target=lambda: seen.extend(
        "chunk" for _ in client.chat(model="llama3.2", messages=USER, stream=True)))
    chat.start()
    while not fake_ollama.chat_requests():  # the chat is in the server, held
        threading.Event().wait(0.01)
    assert client.list() is not None
    seen.append("health")
    chat.join(30)
    assert seen == ["health", "chunk", "chunk", "chunk", "chunk"]  # three words, then the done chunk


def test_stop_does_not_wait_for_a_slow_stream_in_flight() -> None:
    fake = FakeOllama().start()
    port = fake.port
    fake.chunk_delay_s = 30  # the stream would last minutes
    errors: list[BaseException] = []

    def consume() -> None:
        try:
            with make_client(fake.url) as slow:
                list(slow.chat(model="llama3.2", messages=USER, stream=True))
        except BaseException as exc:  # noqa: BLE001 - we only want to see that it ended
            errors.append(exc)

    consumer = threading.Thread(target=consume)
    consumer.start()
    while not fake.chat_requests():
        time.sleep(0.01)

    stopper = threading.Thread(target=fake.stop)
    stopper.start()
    stopper.join(15)  # a hang guard, far below the stream's own length
    consumer.join(15)

    assert not stopper.is_alive(), "stop() waited for the stream"
    assert not consumer.is_alive() and errors
    assert not [t.name for t in threading.enumerate() if t.name.endswith(f":{port}")]


# --------------------------------------------------------------------------- misc endpoints, log, isolation


def test_tags_show_version_and_root(fake_ollama: FakeOllama, client: ollama.Client) -> None:
    fake_ollama.add_model("qwen2.5:7b")

    assert [m.model for m in client.list().models] == ["llama3.2:latest", "all-minilm:latest", "qwen2.5:7b"]
    shown = client.show("llama3.2")
    assert shown.capabilities == ["completion", "tools"] and shown.details.family == "llama"
    assert httpx.get(f"{fake_ollama.url}/api/version", verify=False).json() == {"version": fake_ollama.version}
    root = httpx.get(fake_ollama.url, verify=False)
    assert (root.status_code, root.text) == (200, "Ollama is running")
    assert httpx.head(fake_ollama.url, verify=False).status_code == 200


def test_pull_installs_the_model(fake_ollama: FakeOllama, client: ollama.Client) -> None:
    statuses = [p.status for p in client.pull("phi3", stream=True)]

    assert statuses[-1] == "success" and fake_ollama.has_model("phi3:latest")


def test_request_log(fake_ollama: FakeOllama, client: ollama.Client) -> None:
    before = time.time()
    client.chat(model="llama3.2", messages=USER, options={"num_ctx": 2048}, keep_alive="5m")
    client.embed(model="all-minilm", input=["x"])

    chat, embed = fake_ollama.requests
    assert (chat.method, chat.path, embed.path) == ("POST", "/api/chat", "/api/embed")
    assert chat.body["messages"] == USER and chat.body["options"] == {"num_ctx": 2048} and chat.body["stream"] is False
    assert chat.headers["user-agent"].startswith("ollama-python/")
    assert before <= chat.time <= embed.time
    assert fake_ollama.chat_requests() == [chat.body]
    assert fake_ollama.embed_requests() == [embed.body]


def test_instances_are_independent() -> None:
    with FakeOllama(models=["a"]) as one, FakeOllama(models=["b"]) as two:
        one.script("from one")
        assert one.port != two.port
        with make_client(one.url) as client_one, make_client(two.url) as client_two:
            assert client_two.chat(model="b", messages=USER).message.content.startswith("echo:")
            assert client_one.chat(model="a", messages=USER).message.content == "from one"
        assert len(one.requests) == len(two.requests) == 1


def test_reachable_from_another_process(fake_ollama: FakeOllama) -> None:
    code = f"import urllib.request; print(urllib.request.urlopen({fake_ollama.url + '/api/version'!r}).read().decode())"

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=10, check=True).stdout

    assert json.loads(out) == {"version": fake_ollama.version}


def test_given_port_is_used() -> None:
    with FakeOllama() as probe:
        port = probe.port
    with FakeOllama(port=port) as fake:
        assert fake.url == f"http://127.0.0.1:{port}"
        with urllib.request.urlopen(fake.url) as resp:
            assert resp.read() == b"Ollama is running"
