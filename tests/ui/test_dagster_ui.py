"""What an operator sees in the Dagster UI: the code location's asset graph, and the partitions
that runs materialized, served by the real webserver and read in headless Chromium."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.ui.conftest import Materialized, Screenshot, Webserver

pytestmark = pytest.mark.timeout(120)

GROUPS = ("salesforce", "staged", "m3ter")


def test_the_global_lineage_shows_the_extract_staging_and_load_groups(
    webserver: Webserver, page: Page, screenshot: Screenshot
) -> None:
    """The three stages are the groups an operator navigates by; a code location that fails to
    load shows none of them."""
    page.goto(f"{webserver.url}/asset-groups")
    graph = page.locator("svg foreignObject")
    for group in GROUPS:
        expect(graph.get_by_text(group, exact=True)).to_be_visible()
    expect(graph.get_by_text("fetching statuses")).to_have_count(0)
    screenshot("asset-graph")


def test_a_staged_asset_lineage_links_its_extract_to_its_load(
    webserver: Webserver, page: Page, screenshot: Screenshot
) -> None:
    """staged/accounts sits between the Account extract and the m3ter accounts load, each node
    in its stage's group, and its blocking check shows the run's verdict."""
    page.goto(f"{webserver.url}/assets/staged/accounts?view=lineage")
    graph = page.locator("svg foreignObject")
    for group in GROUPS:
        expect(graph.get_by_text(group, exact=True).first).to_be_visible()
    expect(graph.get_by_text("account", exact=True)).to_have_count(1)
    expect(graph.get_by_text("accounts", exact=True)).to_have_count(2)
    expect(graph.get_by_text("1 / 1 Passed", exact=True)).to_be_visible()
    expect(graph.get_by_text("Loading...")).to_have_count(0)
    screenshot("staged-lineage")


def test_the_staged_partitions_page_shows_the_materialized_partition_and_its_run(
    webserver: Webserver, materialized: Materialized, page: Page, screenshot: Screenshot
) -> None:
    """A partition that a run materialized into the instance counts as materialized, the rest
    as missing, and selecting it names the run that made it."""
    partitions = f"{webserver.url}/assets/staged/accounts?view=partitions"
    page.goto(partitions)
    expect(page.get_by_text("Materialized (1)", exact=True)).to_be_visible()
    missing = f"Missing ({materialized.partition_count - 1})"
    expect(page.get_by_text(missing, exact=True)).to_be_visible()
    screenshot("staged-partitions")

    page.goto(f"{partitions}&partition={materialized.partition}")
    expect(page.get_by_text("Materialized", exact=True)).to_be_visible()
    expect(page.get_by_text(materialized.run_id[:8], exact=True)).to_be_visible()
    expect(page.get_by_text("View all historical events (1)", exact=True)).to_be_visible()
    screenshot("staged-partition-detail")
