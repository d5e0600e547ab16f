"""housing_mme_nightly through the Airflow UI in a real browser (Debian's chromium, Playwright), as a person
uses it: log in, open the trigger form, keep two locations and set the house count, trigger, wait for the
run, then look at the grid's labels, the tries, a training job's link and the report's PNG. Screenshots go
to .local/ui/ (look at them when this fails)."""

from __future__ import annotations

import time
import urllib.error
import urllib.parse

from include.launcher import USERNAME
from tests.scheduler.conftest import AirflowStack
from tests.ui.conftest import SCREENSHOTS

DAG_ID = "housing_mme_nightly"
KEEP = ("Chicago_IL", "Houston_TX")
HOUSES = "300"
RUN_TIMEOUT_S = 300


def run_state(stack: AirflowStack, run_id: str, timeout: float) -> str:
    """The run's final state; a slow API answer (a busy machine) is asked again, not a failure."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stack.check_alive()
        try:
            state = stack.run(DAG_ID, run_id)["state"]
        except (TimeoutError, urllib.error.URLError):
            continue
        if state in ("success", "failed"):
            return state
        time.sleep(3)
    raise AssertionError(f"{run_id} not finished after {timeout} s: {stack.task_states(DAG_ID, run_id)}")


def extra_links(stack: AirflowStack, run_id: str, task_id: str, map_index: int = -1) -> dict[str, str]:
    """The task instance's extra links, from the endpoint the UI's link buttons read."""
    path = (
        f"/api/v2/dags/{DAG_ID}/dagRuns/{urllib.parse.quote(run_id, safe='')}/taskInstances/{task_id}/links"
        f"?map_index={map_index}"
    )
    answer = stack.get(path)
    return answer.get("extra_links", answer)


def shot(page, name: str) -> None:
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def test_trigger_from_the_form_and_follow_the_links(ui_stack: AirflowStack, page) -> None:
    started = time.monotonic()
    base = ui_stack.api_url

    # Log in (the simple auth manager's form).
    page.goto(f"{base}/")
    page.locator("input[name=username]").fill(USERNAME)
    page.locator("input[name=password]").fill(ui_stack.password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/auth/login" not in url, timeout=60_000)

    # The trigger form: sections, titles, descriptions; two of the seed locations and 300 houses.
    page.goto(f"{base}/dags/{DAG_ID}")
    page.get_by_role("button", name="Trigger").first.click()
    dialog = page.get_by_role("dialog")
    for section in ("Core", "Advanced", "Testing only"):
        assert dialog.get_by_text(section, exact=True).is_visible()
    dialog.get_by_text("Core", exact=True).click()
    assert dialog.get_by_text("Houses per location").is_visible()
    assert dialog.get_by_text("The locations to train, one model each").is_visible()
    known = {run["dag_run_id"] for run in ui_stack.runs(DAG_ID)}
    removable = dialog.locator("[aria-label^='Remove ']")
    for label in [removable.nth(i).get_attribute("aria-label") for i in range(removable.count())]:
        if label.removeprefix("Remove ") not in KEEP:
            dialog.locator(f"[aria-label='{label}']").click()
    houses = dialog.locator("input[name=element_houses_per_location]")
    houses.fill(HOUSES)
    shot(page, "1-trigger-form")
    dialog.get_by_role("button", name="Trigger").click()

    (run,) = ui_stack.wait_for_new_runs(DAG_ID, known, 1, timeout=60)
    run_id = run["dag_run_id"]
    assert run["conf"]["locations"] == list(KEEP) and int(run["conf"]["houses_per_location"]) == int(HOUSES)
    state = run_state(ui_stack, run_id, RUN_TIMEOUT_S)
    quoted = urllib.parse.quote(run_id, safe="")
    page.goto(f"{base}/dags/{DAG_ID}/runs/{quoted}")
    page.wait_for_load_state("networkidle")
    shot(page, "2-run")
    assert state == "success", ui_stack.task_states(DAG_ID, run_id)

    # No task needed a second try; every mapped task is labelled with its location.
    instances = ui_stack.task_instances(DAG_ID, run_id)
    assert [ti["task_id"] for ti in instances if ti["try_number"] != 1] == []
    mapped = [ti for ti in instances if ti["map_index"] >= 0]
    assert mapped and {ti["rendered_map_index"] for ti in mapped} == set(KEEP)

    # The grid: the mapped train tasks, listed by location name.
    page.goto(f"{base}/dags/{DAG_ID}/runs/{quoted}/tasks/location.train/mapped")
    for location in KEEP:
        page.get_by_text(location, exact=True).first.wait_for()
    shot(page, "3-mapped-train-tasks")

    # A training job's extra link opens the emulator's page of that job.
    chicago = next(ti for ti in mapped if ti["task_id"] == "location.train" and ti["rendered_map_index"] == KEEP[0])
    page.goto(f"{base}/dags/{DAG_ID}/runs/{quoted}/tasks/location.train/mapped/{chicago['map_index']}")
    page.wait_for_load_state("networkidle")
    shot(page, "4-train-task")
    job_url = extra_links(ui_stack, run_id, "location.train", chicago["map_index"])["SageMaker Training Job"]
    assert job_url.startswith(f"{ui_stack.emulator.url}/_emulator/resources/training-job/hmn-chicago-il-"), job_url
    page.goto(job_url)
    assert page.locator("h1").inner_text().startswith("training-job hmn-chicago-il-")
    assert page.locator("p.status").inner_text() == "Completed"
    shot(page, "5-training-job-page")

    # The summary's report link opens the emulator's S3 page with the night's chart inline.
    page.goto(f"{base}/dags/{DAG_ID}/runs/{quoted}/tasks/summary")
    page.wait_for_load_state("networkidle")
    shot(page, "6-summary-task")
    report_url = extra_links(ui_stack, run_id, "summary")["Report"]
    assert report_url.startswith(f"{ui_stack.emulator.url}/_emulator/s3/"), report_url
    page.goto(report_url)
    chart = page.locator("img[src$='summary.png']")
    chart.wait_for()
    assert page.evaluate("(img) => img.complete && img.naturalWidth > 0", chart.element_handle())
    shot(page, "7-report-page")
    print(f"browser test body: {time.monotonic() - started:.0f} s")
