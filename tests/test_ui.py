"""The admin page in a real headless Chromium (Debian's package, driven by Playwright).

A person opens /ui, types an approver's key once, sees a risky command appear among the pending
approvals with its arguments exactly as they will run, opens the conversation, clicks Approve, and
watches the command's output arrive in the chat. Everything behind the page is real (API process,
worker, Temporal, Docker sandbox) except the model.

Playwright never downloads a browser here: it drives ``/usr/bin/chromium`` (deploy/provision-browser.sh).
Without it the test is skipped, or fails under ``DAEMONFLOW_REQUIRE_DOCKER=1`` (CI).
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from models.optimisation import HintKind, HintProposal
from store.agent_hints import AgentHintStore
from tests.fakes.ollama import Reply, ToolCall
from tests.fixtures.api import ApiStack
from tests.monitoring_support import monitoring_round

CHROMIUM = Path(os.environ.get("DAEMONFLOW_CHROMIUM", "/usr/bin/chromium"))
REQUIRE_ENV = "DAEMONFLOW_REQUIRE_DOCKER"
STEP_TIMEOUT_MS = 60_000


@pytest.fixture
async def browser() -> AsyncIterator[object]:
    reason = None
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        reason = "Playwright is not installed (pip install -e '.[dev]')"
    if reason is None and not CHROMIUM.is_file():
        reason = f"no Chromium at {CHROMIUM} (run deploy/provision-browser.sh as root)"
    if reason:
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{reason}; {REQUIRE_ENV}=1 forbids skipping", pytrace=False)
        pytest.skip(reason)
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            # Root in a container has no user namespaces for Chromium's sandbox; the page is ours.
            args=["--no-sandbox", "--disable-dev-shm-usage"],
        )
        try:
            yield chromium
        finally:
            await chromium.close()


async def signed_in(browser, api: ApiStack, role: str) -> tuple[object, object, list[str]]:
    """A fresh browser context on /ui with the key of ``role`` typed once; its page errors and
    strict-CSP violations (which only show in the console) are collected."""
    context = await browser.new_context()
    page = await context.new_page()
    page.set_default_timeout(STEP_TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.on("console", lambda message: errors.append(message.text) if "Content Security Policy" in message.text else None)
    await page.goto(f"{api.url}/ui/")
    await page.fill("#api-key", api.keys[role])
    await page.click("#key-form button[type=submit]")
    return context, page, errors


@pytest.mark.usefixtures("docker_client")
async def test_an_approver_approves_from_the_page_and_sees_the_result(api: ApiStack, browser) -> None:
    command = f"echo hello from the browser test {uuid.uuid4().hex[:6]}"
    api.ollama.script(Reply(tool_calls=[ToolCall(name="run_command", arguments={"command": command})]),
                      Reply(content="The command ran."))  # fmt: skip
    cid = f"ui-{uuid.uuid4().hex[:10]}"
    started = await api.http("operator").post(
        "/conversations", params={"wait": "false"}, json={"conversation_id": cid, "agent": "developer", "message": "run it"}
    )
    assert started.status_code == 202, started.text

    context, page, errors = await signed_in(browser, api, "approver")
    await page.locator("#app").wait_for(state="visible")
    assert await page.locator("#dashboard").count() == 1

    card = page.locator("#approvals li", has=page.locator(f"a:text-is('{cid}')"))
    await card.wait_for()
    shown = await card.locator("pre.args").inner_text()
    assert json.loads(shown) == {"command": command}
    assert shown == json.dumps({"command": command}, indent=2)

    await card.get_by_role("link", name=cid).click()
    await page.locator("#chat-title", has_text=cid).wait_for()
    await page.locator("#chat-state", has_text="awaiting_approval").wait_for()

    await card.get_by_role("button", name="Approve", exact=True).click()
    # The page is told what the workflow applied (the decide update), not that something was sent.
    await page.locator("#notice", has_text="approve applied to run_command").wait_for()
    assert command in await page.locator("#notice").inner_text()
    result = page.locator("#messages li.tool", has_text=command.removeprefix("echo "))
    await result.wait_for()
    await page.locator("#messages li.assistant", has_text="The command ran.").wait_for()
    await page.locator("#approvals li", has=page.locator(f"a:text-is('{cid}')")).wait_for(state="detached")
    await page.locator("#health-status", has_text="ok").wait_for()
    assert not errors, errors

    # Reloading keeps the key for this tab (sessionStorage), so it is typed once.
    await page.reload()
    await page.locator("#app").wait_for(state="visible")
    await context.close()


async def test_an_injected_note_shows_at_once_as_pending(api: ApiStack, browser) -> None:
    """An operator injects a note into an idle conversation: the chat shows it at once, marked
    pending; the next turn writes it to the transcript, before that turn's message."""
    cid = f"ui-note-{uuid.uuid4().hex[:8]}"
    created = await api.http("operator").post("/conversations", json={"conversation_id": cid, "message": "hello"})
    assert created.status_code == 201, created.text

    context, page, errors = await signed_in(browser, api, "operator")
    await page.locator(f"#conversations li[data-conversation='{cid}']").click()
    await page.locator("#messages li.assistant", has_text="echo: hello").wait_for()

    await page.select_option("#send-mode", "inject-system")
    await page.fill("#send-text", "answer in French")
    await page.click("#send-form button[type=submit]")
    pending = page.locator("#messages li.pending", has_text="answer in French")
    await pending.wait_for()
    assert await pending.locator(".role").text_content() == "system · pending"

    await page.select_option("#send-mode", "message")
    await page.fill("#send-text", "bonjour")
    await page.click("#send-form button[type=submit]")
    await page.locator("#messages li.assistant[data-seq]", has_text="echo: bonjour").wait_for()  # stored, not streaming
    await pending.wait_for(state="detached")
    stored = await page.eval_on_selector_all("#messages li[data-seq]", "items => items.map(i => i.lastChild.textContent)")
    assert stored == ["hello", "echo: hello", "answer in French", "bonjour", "echo: bonjour"]
    assert not errors, errors
    await context.close()


async def test_the_dashboard_shows_the_last_monitoring_run(api: ApiStack, browser) -> None:
    """A viewer opens /ui after a monitoring run and sees its score, every part (those without data
    as n/a with the reason), the prompt cache and parallelism, the 7-day trends, alerts, the usage
    chart and the optimisation hints in force; an operator reverts a hint from the page."""
    agent = f"ui-hint-{uuid.uuid4().hex[:6]}"
    now = datetime.now(UTC)
    hint = AgentHintStore(api.store.engine).apply(
        HintProposal(agent=agent, kind=HintKind.MAX_STEPS_PER_TURN, value=3, previous=8, reason="its turns loop",
                     expires_at=now + timedelta(days=7)), now, f"ui-{agent}")  # fmt: skip
    assert hint is not None
    await monitoring_round(api.client, api.settings)
    report = (await api.http("viewer").get("/monitoring/report")).json()
    buckets = len((await api.http("viewer").get("/monitoring/trends")).json()["buckets"])

    context, page, errors = await signed_in(browser, api, "viewer")

    await page.locator("#dash-score", has_text=str(report["score"])).wait_for()
    assert await page.locator("#dash-score").inner_text() == str(report["score"])
    await page.locator("#dash-status", has_text=report["status"]).wait_for()
    assert await page.locator("#dash-breakdown dt").count() == 7
    for part in ("dependencies", "llm", "tools", "approvals", "cache", "prompt_cache", "parallelism"):
        shown = await page.locator(f"#dash-breakdown dt[data-part='{part}'] + dd").inner_text()
        value = report["breakdown"][part]
        if value is None:
            assert shown == f"n/a: {report['breakdown']['not_applicable'][part]}", (part, shown)
        else:
            assert shown.strip() == f"{round(value * 100)} %", (part, shown)
    performance = await page.locator("#dash-performance").inner_text()
    assert "prompt cache hit" in performance and "parallelism" in performance
    weekly = page.locator("#dash-weekly li.trend")
    assert await weekly.count() == 4
    for line in report["metrics"]["weekly"]["lines"]:
        assert line["trend"] in await page.locator(f"#dash-weekly li[data-metric='{line['metric']}']").inner_text()
    alerts = page.locator("#dash-alerts li")
    await alerts.first.wait_for()
    if report["alerts"]:
        assert await page.locator("#dash-alerts li.alert").count() == len(report["alerts"])
    else:
        assert await alerts.inner_text() == "no open alerts"
    assert await page.locator("#dash-chart rect.bar").count() == buckets
    shown_hint = page.locator(f"#dash-hints li[data-hint='{hint.id}']")
    assert f"{agent}: max_steps_per_turn = 3 (was 8)" in await shown_hint.inner_text()

    await page.click("#dash-refresh")
    await page.locator("#dash-updated", has_text="updated").wait_for()
    assert not errors, errors
    await context.close()

    # An operator reverts the hint from the page; it leaves the list, and the store says who did it.
    context, page, errors = await signed_in(browser, api, "operator")
    await page.locator(f"#dash-hints li[data-hint='{hint.id}'] button").click()
    await page.locator("#notice", has_text=f"reverted #{hint.id}").wait_for()
    await page.locator(f"#dash-hints li[data-hint='{hint.id}']").wait_for(state="detached")
    reverted = AgentHintStore(api.store.engine).get(hint.id)
    assert reverted is not None and reverted.reverted_by == "api:operator-key"
    assert not errors, errors
    await context.close()
