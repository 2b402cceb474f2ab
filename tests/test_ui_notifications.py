"""The admin page's notification centre in a real browser (Playwright + Debian chromium): the badge
counts what waits for a person and the list shows it; a decision takes it off."""

from __future__ import annotations

import uuid

from tests.fakes.ollama import Reply, ToolCall
from tests.fixtures.api import ApiStack
from tests.test_api import until
from tests.test_ui import browser, signed_in  # noqa: F401  (the browser fixture)


async def test_the_badge_counts_an_approval_and_the_list_shows_it(api: ApiStack, browser) -> None:  # noqa: F811
    command = f"echo notified {uuid.uuid4().hex[:6]}"
    api.ollama.script(Reply(tool_calls=[ToolCall(name="run_command", arguments={"command": command})]), Reply(content="ok"))
    cid = f"ui-notif-{uuid.uuid4().hex[:8]}"
    started = await api.http("operator").post("/conversations", params={"wait": "false"},
                                              json={"conversation_id": cid, "agent": "developer", "message": "run it"})  # fmt: skip
    assert started.status_code == 202, started.text
    viewer = api.http("viewer")
    waiting = await until(lambda: _approval(viewer, cid))

    context, page, errors = await signed_in(browser, api, "viewer")
    await page.locator("#app").wait_for(state="visible")
    count = page.locator("#notif-count")
    await page.wait_for_function("() => Number(document.getElementById('notif-count').textContent) >= 1")
    assert "alert" in (await count.get_attribute("class"))
    assert await page.locator("#notifications-panel").is_hidden()
    await page.click("#notif-button")
    item = page.locator(f"#notifications li[data-kind='approval'][data-conversation='{cid}']")
    await item.wait_for()
    assert await item.locator("strong").inner_text() == "developer asks to run run_command"
    assert await page.get_attribute("#notif-button", "aria-expanded") == "true"

    denied = await api.http("approver").post(f"/approvals/{cid}/{waiting['data']['tool_call_id']}", json={"decision": "deny"})
    assert denied.status_code == 200, denied.text
    await until(lambda: _gone(viewer, cid))
    await item.wait_for(state="detached")  # the next refresh takes it off
    assert not errors, errors
    await context.close()


async def _approval(http, cid):
    items = (await http.get("/notifications")).json()["items"]
    return next((i for i in items if i["kind"] == "approval" and i["data"]["conversation_id"] == cid), None)


async def _gone(http, cid):
    return await _approval(http, cid) is None
