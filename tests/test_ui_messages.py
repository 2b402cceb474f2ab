"""The admin page's private messages in a real headless Chromium: send a request to an agent,
answer the question it asks, read its reply and the collaboration table. Everything behind the
page is real except the model."""

from __future__ import annotations

from tests.fakes.ollama import echo_responder, hashed_embedding
from tests.fixtures.api import ApiStack
from tests.message_support import CODING, DEVELOPER, FIX, agents_answer, dm_conversations_ended, replies  # noqa: F401 (the fixture)
from tests.test_ui import browser, signed_in  # noqa: F401  (the browser fixture)


async def test_a_message_from_the_page_with_its_question_answered(api: ApiStack, browser) -> None:  # noqa: F811
    agents_answer(api.ollama, **{DEVELOPER: replies("NEED INPUT: which test file?", FIX)})
    try:
        context, page, errors = await signed_in(browser, api, "operator")
        await page.locator("#app").wait_for(state="visible")
        await page.fill("#pm-to", "developer")
        await page.fill("#pm-text", CODING)
        await page.click("#pm-form button[type=submit]")
        await page.locator("#notice", has_text="sent to developer").wait_for()
        asking = page.locator("#pm-list li[data-state=input_required]")
        await asking.locator(".pm-text", has_text="asks: which test file?").wait_for()
        await asking.locator("input").fill("tests/test_api.py")
        await asking.locator("button[type=submit]").click()
        message_id = await asking.get_attribute("data-message")
        done = page.locator(f"#pm-list li[data-message='{message_id}'][data-state=completed]")
        await done.locator(".pm-text", has_text=FIX).wait_for()
        await page.click("#messages-panel summary")
        row = page.locator("#pm-collaboration tr[data-pair='operator-key>developer']")
        await row.wait_for()
        assert int(await row.locator("td").nth(4).inner_text()) >= 1
        assert not errors, errors
        await context.close()
    finally:
        api.ollama.responder, api.ollama.embedder, api.ollama.structured_responder = echo_responder, hashed_embedding, None
