"""The admin page's channel view in a real headless Chromium: create a channel, post, see who
spoke and why (and, quietly, who observed or ignored), give feedback, and decide a member's tool
call from the channel view. Everything behind the page is real except the model."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from tests.channel_support import CODING, team_on
from tests.fakes.ollama import Reply, ToolCall, by_system_prompt, echo_responder, hashed_embedding
from tests.fixtures.api import ApiStack
from tests.test_ui import browser, signed_in  # noqa: F401  (the browser fixture)


@pytest.fixture
async def team(api: ApiStack) -> AsyncIterator[ApiStack]:
    await team_on(api)
    yield api
    api.ollama.responder, api.ollama.embedder = echo_responder, hashed_embedding


async def test_a_channel_from_the_page_shows_who_spoke_and_why(team: ApiStack, browser) -> None:  # noqa: F811
    cid = f"ui-{uuid.uuid4().hex[:8]}"
    context, page, errors = await signed_in(browser, team, "operator")
    await page.locator("#app").wait_for(state="visible")
    await page.click("#channels-panel summary")
    await page.fill("#new-channel-id", cid)
    await page.fill("#new-channel-people", "alice")
    await page.click("#new-channel button[type=submit]")
    await page.locator("#channel-title", has_text=f"#{cid}").wait_for()
    await page.locator("#channel-members li[data-agent=moderator]").wait_for()

    await page.fill("#channel-author", "alice")
    await page.fill("#channel-text", CODING)
    await page.click("#channel-post button[type=submit]")
    reply = page.locator("#channel-messages li.agent[data-author=developer]")
    await reply.locator(".text", has_text="Run pytest with -x and read the traceback.").wait_for()
    await reply.locator(".why", has_text="intervene (high priority) 0.").wait_for()
    post = page.locator("#channel-messages li.person[data-seq='1']")
    await post.locator(".quiet .decision.ignore", has_text="analyst: ignore 0.00").wait_for()
    assert await post.locator(".quiet .decision").count() == 2
    assert "2 → #1" in await reply.locator(".role").inner_text()
    await page.locator("#channel-members li[data-agent=developer]", has_text="1 replies").wait_for()

    await reply.locator("button[data-feedback=useful]").click()
    await page.locator("#notice", has_text="feedback recorded: useful on developer's decision").wait_for()
    await reply.locator("button.chosen[data-feedback=useful]").wait_for()
    scores = (await team.http("viewer").get("/relevance/scores/developer", params={"channel_id": cid})).json()["items"]
    assert [f["feedback"] for f in scores[0]["feedback"]] == ["useful"]
    assert scores[0]["feedback"][0]["person"] == "operator-key"
    assert not errors, errors
    await context.close()


async def test_a_members_tool_call_is_decided_from_the_channel_view(team: ApiStack, browser) -> None:  # noqa: F811
    asked = []

    def developer(request):
        asked.append(request)
        if len(asked) == 1:
            return Reply(tool_calls=[ToolCall(name="run_command", arguments={"command": "echo from the page"})])
        return "Understood, I will not run it."

    team.ollama.responder = by_system_prompt({'You are "developer"': developer})
    operator = team.http("operator")
    cid = f"ui-{uuid.uuid4().hex[:8]}"
    assert (await operator.post("/channels", json={"channel_id": cid, "agents": ["developer", "analyst"]})).status_code == 201
    posted = await operator.post(f"/channels/{cid}/posts", params={"wait": "false"}, json={"content": CODING, "author": "alice"})
    assert posted.status_code == 202, posted.text

    context, page, errors = await signed_in(browser, team, "admin")
    await page.locator(f"#channels li[data-channel='{cid}']").click()
    card = page.locator("#channel-approvals li", has_text="echo from the page")
    await card.wait_for()
    assert f"channel #{cid}" in await card.inner_text()
    await page.locator("#channel-details", has_text="developer awaiting approval: run_command").wait_for()
    await card.get_by_role("button", name="Deny").click()
    await page.locator("#notice", has_text="deny applied to run_command").wait_for()
    await page.locator("#channel-messages li.agent .text", has_text="Understood, I will not run it.").wait_for()
    await page.locator("#channel-approvals-panel").wait_for(state="hidden")
    assert not errors, errors
    await context.close()
