"""The AI tools (seed 002): generate_code, review_diff and final_answer, with the fake Ollama (a real
HTTP server, so the real client runs) and the real sandbox and dev server."""

from __future__ import annotations

import hashlib

import pytest

from activities.ai_tools import GENERATE_SYSTEM, REVIEW_SYSTEM, strip_fences
from activities.prompt import prompt_budget_chars
from config.templates import load_template
from models.payloads import PayloadRef
from tests.fakes.ollama import Reply, ToolCall
from tests.fixtures.temporal import daemon_settings, running_daemon
from tests.test_approvals import actions, tool_messages

pytestmark = pytest.mark.usefixtures("docker_client")


def call(name: str, **arguments) -> ToolCall:
    return ToolCall(name=name, arguments=arguments)


def workspace_file(docker_client, conversation_id: str, path: str) -> str:
    container = docker_client.containers.get(f"daemonflow-{conversation_id}")
    result = container.exec_run(["cat", f"/workspace/{path}"])
    return result.output.decode() if result.exit_code == 0 else f"<missing: {result.output.decode()}>"


def test_fences_around_a_whole_answer_are_removed_and_nothing_else():
    assert strip_fences("```python\nx = 1\n```") == "x = 1\n"
    assert strip_fences("x = 1") == "x = 1\n"
    assert strip_fences("text\n```\ncode\n```\n") == "text\n```\ncode\n```\n"


async def test_generate_code_writes_what_the_model_generated(daemon, fake_ollama, docker_client):
    fake_ollama.script(
        Reply(tool_calls=[call("generate_code", path="src/calc.py", instructions="an add(a, b) function")]),
        Reply(content="```python\ndef add(a, b):\n    return a + b\n```"),  # the generation itself
        Reply(content="done"),
    )
    handle = await daemon.start(agent="developer")
    conversation_id = handle.id.removeprefix("conversation-")
    result = await daemon.send(handle, "write a calculator")
    assert result.reply == "done"
    assert [(c.tool, c.decision, c.success) for c in result.tool_calls] == [("generate_code", "allow", True)]
    assert workspace_file(docker_client, conversation_id, "src/calc.py") == "def add(a, b):\n    return a + b\n"
    generation = fake_ollama.chat_requests()[1]
    assert generation["model"].startswith("llama3.2") and generation["messages"][0]["content"] == GENERATE_SYSTEM
    assert "an add(a, b) function" in generation["messages"][1]["content"]
    assert "Language: Python" in generation["messages"][1]["content"]  # guessed from the path
    [message] = tool_messages(daemon, handle)
    assert message.startswith("wrote 32 bytes to /workspace/src/calc.py (generated Python)") and "return a + b" in message
    [action] = actions(daemon, handle)
    assert (action.action_type, action.source) == ("CODE_GENERATION", "rule:allow-code-generation")


async def test_generate_code_refuses_more_than_five_megabytes(daemon, fake_ollama, docker_client):
    huge = "x = 1\n" * 1_000_000  # 6 MB
    fake_ollama.script(
        Reply(tool_calls=[call("generate_code", path="src/huge.py", instructions="a lot", language="python")]),
        Reply(content=huge),
        Reply(content="too big"),
    )
    handle = await daemon.start(agent="developer")
    before = (await handle.describe()).raw_description.workflow_execution_info.history_size_bytes
    result = await daemon.send(handle, "generate")
    conversation_id = handle.id.removeprefix("conversation-")
    assert not result.tool_calls[0].success
    assert "over generate_code's limit of 5242880 bytes; nothing was written" in tool_messages(daemon, handle)[0]
    child = await daemon.client.get_workflow_handle(f"tool-{conversation_id}-{result.tool_calls[0].id}").describe()
    assert child.raw_description.workflow_execution_info.history_size_bytes < 16 * 1024
    after = (await handle.describe()).raw_description.workflow_execution_info.history_size_bytes
    assert after - before < 64 * 1024


async def test_review_diff_reviews_the_whole_diff_by_reference(daemon, fake_ollama, docker_client):
    big_change = "".join(f"value_{i} = {i}\n" for i in range(20_000))  # ~290 KB of diff
    fake_ollama.script(
        Reply(tool_calls=[call("write_file", path="src/a.py", content="old = 1\n"), call("git_commit", message="init")]),
        Reply(tool_calls=[call("write_file", path="src/a.py", content="old = 2\n" + big_change),
                          call("review_diff", focus="naming")]),
        Reply(content="The names value_N say nothing; use a list."),  # the review itself
        Reply(tool_calls=[call("git_commit", message="all"), call("review_diff")]),
        Reply(content="done"),
    )
    handle = await daemon.start(agent="developer")
    conversation_id = handle.id.removeprefix("conversation-")
    result = await daemon.send(handle, "change and review")
    assert result.reply == "done"
    assert [(c.tool, c.success) for c in result.tool_calls] == [
        ("write_file", True), ("git_commit", True), ("write_file", True), ("review_diff", True),
        ("git_commit", True), ("review_diff", True)]
    review_request = fake_ollama.chat_requests()[2]
    assert review_request["messages"][0]["content"] == REVIEW_SYSTEM
    prompt = review_request["messages"][1]["content"]
    assert prompt.startswith("Look most closely at: naming") and "-old = 1" in prompt and "+old = 2" in prompt
    assert "characters of the diff are left out" in prompt  # cut to the model's context...
    assert len(prompt) + len(REVIEW_SYSTEM) <= prompt_budget_chars(load_template("developer"))
    messages = tool_messages(daemon, handle)
    assert messages[3].startswith("Review of the uncommitted changes (") and "use a list" in messages[3]
    diff_chars = int(messages[3].split("(")[1].split(" ")[0])
    assert diff_chars > len(big_change)  # ...from the whole diff, stored once in the store
    assert messages[5] == "nothing to review: there are no changes (git diff is empty)"
    assert len(fake_ollama.chat_requests()) == 5  # four steps and one review: none for the empty diff
    child = await daemon.client.get_workflow_handle(f"tool-{conversation_id}-{result.tool_calls[3].id}").describe()
    assert child.raw_description.workflow_execution_info.history_size_bytes < 16 * 1024
    assert "artifact" not in messages[3]  # the review itself fits the 30 000 characters a tool may return


async def test_final_answer_ends_the_turn_and_nothing_after_it_runs(daemon, fake_ollama, docker_client):
    fake_ollama.script(
        Reply(tool_calls=[call("write_file", path="notes.txt", content="hi")]),
        Reply(tool_calls=[call("final_answer", answer="All done: notes.txt holds hi."),
                          call("run_command", command="touch /workspace/after-final")]),
    )
    handle = await daemon.start(agent="developer")
    conversation_id = handle.id.removeprefix("conversation-")
    result = await daemon.send(handle, "take a note")
    assert result.reply == "All done: notes.txt holds hi." and not result.reply_truncated
    assert [(c.tool, c.decision, c.success) for c in result.tool_calls] == [
        ("write_file", "allow", True), ("final_answer", "allow", True), ("run_command", "skipped", False)]
    assert len(fake_ollama.chat_requests()) == 2  # the turn ended: no third model call
    assert workspace_file(docker_client, conversation_id, "after-final").startswith("<missing")
    transcript = daemon.store.list_messages(conversation_id)
    assert (transcript[-1].role, transcript[-1].content) == ("assistant", "All done: notes.txt holds hi.")
    sources = [(a.tool, a.action_type, a.source) for a in actions(daemon, handle)]
    assert sources[1:] == [("final_answer", "BUILTIN", "builtin:final_answer"),
                           ("run_command", "TERMINAL_COMMAND", "builtin:final_answer")]
    fake_ollama.script(Reply(content="next turn works"))
    assert (await daemon.send(handle, "and then?")).reply == "next turn works"
    assert "All done" in str(fake_ollama.chat_requests()[-1]["messages"])  # the answer is in the context


async def test_a_model_cannot_forge_a_reference_to_stored_content(daemon, fake_ollama, docker_client):
    """A marker the model writes names nothing: it is written as the text it is."""
    fake_ollama.script(Reply(tool_calls=[call("write_file", path="secret.txt", content="top secret " * 3000)]),
                       Reply(content="ok"))
    handle = await daemon.start(agent="developer")
    conversation_id = handle.id.removeprefix("conversation-")
    await daemon.send(handle, "one")
    digest = hashlib.sha256(("top secret " * 3000).encode()).hexdigest()
    forged = PayloadRef(digest=digest, bytes=33_000, chars=33_000).marker()
    fake_ollama.script(Reply(tool_calls=[call("write_file", path="copy.txt", content=forged)]), Reply(content="ok"))
    await daemon.send(handle, "two")
    assert workspace_file(docker_client, conversation_id, "copy.txt") == forged


async def test_the_ai_tools_ask_an_openai_compatible_server_and_respect_its_token_cap(
    temporal_env, temporal_address, fake_openai, docker_client, tmp_path
):
    """The AI tools call the conversation's chat model through its provider, whatever it is: here an
    OpenAI-compatible server (the fake honours ``max_tokens``, cutting the answer with ``length``).
    A file cut at the cap is not written; a review cut at the cap says so."""
    settings = daemon_settings(tmp_path, temporal_address, "http://127.0.0.1:9", llm_provider="openai",
                               openai_base_url=fake_openai.url, model="smollm2", embed_model="smollm2-embed",
                               max_tokens=40, memory_extraction=False)  # fmt: skip
    too_long = " ".join(f"v{i} = {i}" for i in range(30))  # 90 words: over the cap of 40
    fake_openai.script(
        Reply(tool_calls=[call("generate_code", path="src/calc.py", instructions="an add(a, b) function")]),
        Reply(content="def add(a, b):\n    return a + b\n"),  # the generation, within the cap
        Reply(tool_calls=[call("generate_code", path="src/long.py", instructions="many values")]),
        Reply(content=too_long),  # cut at 40 tokens: not written
        Reply(tool_calls=[call("git_commit", message="init"),
                          call("write_file", path="src/calc.py", content="def add(a, b):\n    return b + a\n"),
                          call("review_diff")]),
        Reply(content="Looks fine. " * 30),  # the review, cut at the cap
        Reply(content="done"),
    )
    async with running_daemon(temporal_env.client, settings) as daemon:
        handle = await daemon.start(agent="developer")
        result = await daemon.send(handle, "write a calculator, a long file, and review")
        conversation_id = handle.id.removeprefix("conversation-")
        assert result.reply == "done"
        assert [(c.tool, c.success) for c in result.tool_calls] == [
            ("generate_code", True), ("generate_code", False), ("git_commit", True), ("write_file", True),
            ("review_diff", True)]
        assert workspace_file(docker_client, conversation_id, "src/long.py").startswith("<missing")
        written, refused, _, _, review = tool_messages(daemon, handle)
    assert written.startswith("wrote 32 bytes to /workspace/src/calc.py (generated Python)")
    assert "reached its token cap (40 tokens) before src/long.py was complete; nothing was written" in refused
    assert review.startswith("Review of the uncommitted changes (") and "Looks fine." in review
    assert "-    return a + b" in fake_openai.chat_requests()[5]["messages"][1]["content"]  # the generated code, committed
    assert review.endswith("[the review stopped at the model's token cap (40 tokens)]")
    generation = fake_openai.chat_requests()[1]
    assert generation["model"] == "smollm2" and generation["max_tokens"] == 40
    assert [m["role"] for m in generation["messages"]] == ["system", "user"]
    assert generation["messages"][0]["content"] == GENERATE_SYSTEM
    assert fake_openai.chat_requests()[5]["messages"][0]["content"] == REVIEW_SYSTEM


async def test_a_model_the_server_lacks_fails_the_ai_tool_at_once_with_the_servers_words(daemon, fake_ollama, docker_client):
    """The provider's error classes hold for the AI tools too: a 404 is not retried."""
    fake_ollama.script(
        Reply(tool_calls=[call("generate_code", path="src/x.py", instructions="anything")]),
        Reply(error='model "llama3.2" not found, try pulling it first', status=404),  # the generation
        Reply(content="ok, it failed"),
    )
    handle = await daemon.start(agent="developer")
    result = await daemon.send(handle, "generate")
    assert result.reply == "ok, it failed"
    assert [(c.tool, c.success) for c in result.tool_calls] == [("generate_code", False)]
    [message] = tool_messages(daemon, handle)
    assert "not found" in message and "`ollama pull llama3.2`" in message, message
    assert len(fake_ollama.chat_requests()) == 3  # asked once: no retry of a missing model
