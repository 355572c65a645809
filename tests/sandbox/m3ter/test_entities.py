"""Every entity through m3ter's SDK: create, retrieve, full-replace update, paged list, delete."""

from __future__ import annotations

from typing import Any

import m3ter
import pytest

from tests.sandbox.m3ter.builders import (
    API_CALLS,
    API_TEMPLATE,
    BAND,
    CASES,
    MESSAGING_METER,
    Builder,
    Case,
)

ENTITY_NAMES = list(CASES)


def _resource(client: m3ter.M3ter, case: Case) -> Any:
    return getattr(client, case.resource)


def _create(client: m3ter.M3ter, case: Case, n: int = 0) -> tuple[Any, dict[str, Any]]:
    args = case.create(Builder(client), n)
    return _resource(client, case).create(**args), args


@pytest.mark.parametrize("collection", ENTITY_NAMES)
def test_create_assigns_an_id_version_1_and_audit_fields(client: m3ter.M3ter, collection: str):
    created, _ = _create(client, CASES[collection])
    assert len(created.id) == 36
    assert created.version == 1
    assert created.dt_created is not None and created.dt_last_modified is not None
    assert created.created_by


@pytest.mark.parametrize("collection", ENTITY_NAMES)
def test_retrieve_returns_the_created_object(client: m3ter.M3ter, collection: str):
    case = CASES[collection]
    created, _ = _create(client, case)
    fetched = _resource(client, case).retrieve(created.id)
    assert fetched.to_dict() == created.to_dict()


@pytest.mark.parametrize("collection", ENTITY_NAMES)
def test_update_replaces_the_object_and_increments_the_version(
    client: m3ter.M3ter, collection: str
):
    case = CASES[collection]
    created, args = _create(client, case)
    change = case.changed(Builder(client))
    updated = _resource(client, case).update(created.id, **{**args, **change, "version": 1})
    assert updated.version == 2
    assert getattr(updated, case.attribute) == next(iter(change.values()))
    assert _resource(client, case).retrieve(created.id).version == 2


@pytest.mark.parametrize("collection", ENTITY_NAMES)
def test_list_pages_through_every_object_once(client: m3ter.M3ter, collection: str):
    case = CASES[collection]
    made = {_create(client, case, n)[0].id for n in range(3)}
    first = _resource(client, case).list(page_size=2)
    assert len(first.data) == 2 and first.next_token
    listed = [item.id for item in _resource(client, case).list(page_size=2)]
    assert made <= set(listed)
    assert len(listed) == len(set(listed))


@pytest.mark.parametrize("collection", ENTITY_NAMES)
def test_delete_answers_the_deleted_object_and_removes_it(client: m3ter.M3ter, collection: str):
    case = CASES[collection]
    created, _ = _create(client, case)
    deleted = _resource(client, case).delete(created.id)
    assert deleted.id == created.id
    with pytest.raises(m3ter.NotFoundError):
        _resource(client, case).retrieve(created.id)


def test_update_clears_optional_fields_left_out(client: m3ter.M3ter):
    account = client.accounts.create(
        code="acme",
        name="Acme",
        email_address="a@acme.test",
        purchase_order_number="PO-1",
        custom_fields={"tier": "Gold"},
    )
    updated = client.accounts.update(
        account.id, code="acme", name="Acme", email_address="a@acme.test", version=1
    )
    assert updated.purchase_order_number == ""  # cleared, and echoed as m3ter echoes unset text
    assert updated.custom_fields == {}


def test_create_ignores_a_version_in_the_body(client: m3ter.M3ter):
    product = client.products.create(code="p-1", name="P", version=7)
    assert product.version == 1


def test_plan_answers_the_product_of_its_template(client: m3ter.M3ter):
    plan = client.plans.retrieve(Builder(client).plan())
    template = client.plan_templates.retrieve(plan.plan_template_id)
    assert plan.product_id == template.product_id


def test_pricing_answers_its_aggregation_type_and_segment_string(client: m3ter.M3ter):
    pricing = client.pricings.create(
        plan_template_id=API_TEMPLATE,
        aggregation_id=API_CALLS,
        pricing_bands=[BAND],
        start_date="2025-01-01T00:00:00Z",
        segment={"region": "EMEA", "tier": "Premium"},
    )
    assert pricing.aggregation_type == "SIMPLE"
    assert pricing.segment_string == "region=EMEA,tier=Premium"


def test_a_segmented_aggregation_keeps_its_segmented_fields_and_segments(client: m3ter.M3ter):
    segments = [{"region": "NA"}, {"region": "*"}]
    created = client.aggregations.create(
        name="Sent by region",
        meter_id=MESSAGING_METER,
        target_field="messages_sent",
        aggregation="SUM",
        rounding="NONE",
        quantity_per_unit=1,
        unit="message",
        segmented_fields=["region"],
        segments=segments,
    )
    fetched = client.aggregations.retrieve(created.id)
    assert fetched.segmented_fields == ["region"]
    assert fetched.segments == segments
