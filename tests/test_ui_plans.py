"""The admin page's plan view in a real headless Chromium: a plan's tasks as a layered graph with
their states, dependencies and results, and the plan ended from the page."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from tests.fakes.ollama import Reply, echo_responder
from tests.fixtures.api import ApiStack
from tests.plan_support import TaskModel
from tests.test_api import until
from tests.test_ui import browser, signed_in  # noqa: F401  (the browser fixture)


@pytest.fixture
async def plans_api(api: ApiStack) -> AsyncIterator[ApiStack]:
    yield api
    api.ollama.responder = echo_responder


async def test_a_plan_shows_its_layers_and_is_ended_from_the_page(plans_api: ApiStack, browser) -> None:  # noqa: F811
    model = TaskModel(plans_api.ollama)
    model.script("deploy", Reply(content="late", delay_s=30))
    plan_id = f"ui-{uuid.uuid4().hex[:8]}"
    body = {"plan_id": plan_id, "title": "release", "tasks": [
        {"id": "build", "prompt": "b"}, {"id": "test", "prompt": "t", "depends_on": ["build"]},
        {"id": "docs", "prompt": "d", "depends_on": ["build"]},
        {"id": "deploy", "prompt": "ship", "depends_on": ["test", "docs"]}]}
    assert (await plans_api.http("operator").post("/plans", json=body)).status_code == 201

    context, page, errors = await signed_in(browser, plans_api, "operator")
    await page.locator(f"#plans li[data-plan='{plan_id}']").click()
    await page.locator("#plan-title", has_text=f"plan {plan_id} — release").wait_for()
    await page.locator("#plan-details", has_text="3/4 done · running: deploy").wait_for()
    layers = page.locator("#plan-graph > li.plan-layer")
    assert await layers.count() == 3
    assert await layers.nth(1).locator(".plan-task").count() == 2  # test and docs, side by side
    test = page.locator(".plan-task[data-task=test]")
    assert "succeeded" in await test.locator(".badge").inner_text()
    assert "after build" in await test.inner_text() and "result of test" in await test.inner_text()
    await page.locator(".plan-task[data-task=deploy] .badge", has_text="running").wait_for()

    await page.click("#plan-end")
    await page.locator("#plan-state", has_text="ended").wait_for()
    deploy = page.locator(".plan-task[data-task=deploy]")
    await deploy.locator(".badge", has_text="cancelled").wait_for()
    assert "plan stopped: ended from the admin page" in await deploy.inner_text()

    async def completed():
        return (await plans_api.http("viewer").get(f"/plans/{plan_id}")).json()["execution"] == "completed"

    await until(completed)
    assert not errors, errors
    await context.close()
