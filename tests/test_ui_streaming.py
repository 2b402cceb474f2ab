"""The admin page renders the model's reply while it is written (issue 16), in headless Chromium:
tokens are on the page before the turn is over, and the stored reply replaces them once."""

from __future__ import annotations

import uuid

from tests.fakes.ollama import Reply
from tests.fixtures.api import ApiStack
from tests.test_streaming import LONG
from tests.test_ui import browser, signed_in  # noqa: F401 - the fixture

__all__ = ["browser"]


async def test_tokens_show_on_the_page_before_the_turn_ends(api: ApiStack, browser) -> None:  # noqa: F811
    cid = f"ui-tokens-{uuid.uuid4().hex[:8]}"
    operator = api.http("operator")
    assert (await operator.post("/conversations", json={"conversation_id": cid})).status_code == 201
    context, page, errors = await signed_in(browser, api, "operator")
    await page.locator(f"#conversations li[data-conversation='{cid}']").click()
    await page.locator("#chat-stream", has_text="live").wait_for()

    api.ollama.chunk_delay_s = 0.1  # 40 chunks: 4 s of writing
    api.ollama.script(Reply(content=LONG))
    sent = await operator.post(f"/conversations/{cid}/messages", params={"wait": "false"}, json={"content": "go"})
    assert sent.status_code == 202, sent.text
    writing = page.locator("#messages li.streaming .text", has_text="word0")
    await writing.wait_for()
    shown = await writing.text_content()
    turn = (await operator.get(f"/conversations/{cid}/turns/{sent.json()['turn_id']}")).json()
    assert turn["done"] is False and LONG.startswith(shown) and shown != LONG  # on the page mid-turn

    await page.locator("#messages li.assistant[data-seq]", has_text="word39").wait_for()
    await page.locator("#messages li.streaming").wait_for(state="detached")
    stored = await page.eval_on_selector_all("#messages li[data-seq]", "items => items.map(i => i.lastChild.textContent)")
    assert stored == ["go", LONG]  # the stored reply, once
    assert not errors, errors
    await context.close()
