"""REST writes through simple-salesforce: sObject rows, upserts, deletes and collections."""

from __future__ import annotations

import itertools

import pytest
from simple_salesforce.exceptions import (
    SalesforceMalformedRequest,
    SalesforceMoreThanOneRecord,
    SalesforceResourceNotFound,
)

from pipeline.mapping.files import load_mappings
from pipeline.mapping.source import SHIPPED_MAPPINGS
from pipeline.mapping.writeback import ROLE_FIELDS, STATUSES
from pipeline.sandbox.salesforce.schema import org_schema

_accounts = itertools.count()


@pytest.fixture(scope="module")
def account_ids(sf) -> list[str]:
    return [r["Id"] for r in sf.query("SELECT Id FROM Account ORDER BY Id")["records"]]


@pytest.fixture
def account(account_ids) -> str:
    """A live account no other test of the module writes."""
    return account_ids[next(_accounts)]


def _account(sf, record_id: str, fields: str) -> dict:
    soql = f"SELECT {fields} FROM Account WHERE Id = '{record_id}'"
    return sf.query_all(soql, include_deleted=True)["records"][0]


def _error(failure: pytest.ExceptionInfo) -> dict:
    (error,) = failure.value.content
    return error


def _collection(sf, records: list[dict], all_or_none: bool = False) -> list[dict]:
    body = {"allOrNone": all_or_none, "records": records}
    return sf.restful("composite/sobjects", method="PATCH", json=body)


def _record(record_id: str, **fields: object) -> dict:
    return {"attributes": {"type": "Account"}, "id": record_id, **fields}


def test_every_active_write_back_row_s_fields_are_in_both_orgs():
    rows = [r for r in load_mappings(SHIPPED_MAPPINGS).writeback if r.active]
    assert rows
    for kind in ("demo", "cpq"):
        schema = org_schema(kind)
        for row in rows:
            obj = schema.sobject(row.object)
            assert obj is not None, row.object
            for role, name in row.fields().items():
                f = obj.field(name)
                assert f is not None, f"{kind} {row.object}.{name}"
                assert (f.type, f.nillable, f.calculated) == (
                    ROLE_FIELDS[role]["type"],
                    True,
                    False,
                )


def test_describe_shows_the_status_fields_writable(sf):
    fields = {f["name"]: f for f in sf.Order.describe()["fields"]}
    status = fields["M3ter_Sync_Status__c"]
    assert (status["type"], status["updateable"], status["createable"]) == ("picklist", True, True)
    assert [v["value"] for v in status["picklistValues"]] == list(STATUSES)
    assert status["restrictedPicklist"] is True
    assert (fields["M3ter_Sync_Message__c"]["type"], fields["M3ter_Sync_Message__c"]["length"]) == (
        "textarea",
        1000,
    )
    assert (fields["M3ter_Id__c"]["type"], fields["M3ter_Id__c"]["length"]) == ("string", 36)
    assert fields["M3ter_Last_Synced__c"]["type"] == "datetime"
    assert fields["M3ter_Last_Synced__c"]["nillable"] is True


def test_a_patch_bumps_the_stamps_and_a_query_sees_the_new_value(sf, org, account):
    before = _account(sf, account, "SystemModstamp, LastModifiedDate")
    assert (
        sf.Account.update(
            account,
            {
                "M3ter_Sync_Status__c": "Success",
                "M3ter_Last_Synced__c": "2024-01-31T12:00:00.000+0000",
            },
        )
        == 204
    )
    after = _account(
        sf,
        account,
        "M3ter_Sync_Status__c, M3ter_Last_Synced__c, SystemModstamp, LastModifiedDate, "
        "LastModifiedById",
    )
    assert after["M3ter_Sync_Status__c"] == "Success"
    assert after["M3ter_Last_Synced__c"] == "2024-01-31T12:00:00.000+0000"
    assert after["SystemModstamp"] > before["SystemModstamp"]
    assert after["LastModifiedDate"] > before["LastModifiedDate"]
    assert after["LastModifiedById"] == org.integration_user()


def test_a_json_null_empties_a_field_and_a_missing_key_keeps_it(sf, account):
    sf.Account.update(account, {"M3ter_Id__c": "m-1", "M3ter_Sync_Message__c": "why"})
    sf.Account.update(account, {"M3ter_Sync_Message__c": None})
    record = _account(sf, account, "M3ter_Id__c, M3ter_Sync_Message__c")
    assert (record["M3ter_Id__c"], record["M3ter_Sync_Message__c"]) == ("m-1", None)


def test_a_read_only_field_is_refused_by_field_level_security(sf, org, account):
    org.read_only_fields = frozenset({"Account.M3ter_Id__c"})
    described = {f["name"]: f for f in sf.Account.describe()["fields"]}["M3ter_Id__c"]
    assert (described["updateable"], described["createable"]) == (False, False)
    with pytest.raises(SalesforceMalformedRequest) as failure:
        sf.Account.update(account, {"M3ter_Id__c": "m-2"})
    error = _error(failure)
    assert error["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    assert error["message"].startswith("Unable to create/update fields: M3ter_Id__c. Please check")
    assert error["fields"] == ["M3ter_Id__c"]


def test_a_validation_rule_refuses_the_record_it_is_true_for(sf, org, account):
    org.add_validation_rule(
        "Account",
        '"M3ter_Sync_Status__c" = \'Failed\' AND "M3ter_Sync_Message__c" IS NULL',
        "A failed sync needs a reason",
        "M3ter_Sync_Message__c",
    )
    with pytest.raises(SalesforceMalformedRequest) as failure:
        sf.Account.update(account, {"M3ter_Sync_Status__c": "Failed"})
    assert _error(failure) == {
        "message": "A failed sync needs a reason",
        "errorCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION",
        "fields": ["M3ter_Sync_Message__c"],
    }
    sf.Account.update(account, {"M3ter_Sync_Status__c": "Failed", "M3ter_Sync_Message__c": "no"})
    assert _account(sf, account, "M3ter_Sync_Status__c")["M3ter_Sync_Status__c"] == "Failed"


def test_a_locked_row_fails_the_next_write_and_then_frees(sf, org, account):
    org.lock_rows([account])
    with pytest.raises(SalesforceMalformedRequest) as failure:
        sf.Account.update(account, {"M3ter_Id__c": "m-3"})
    assert _error(failure)["errorCode"] == "UNABLE_TO_LOCK_ROW"
    assert _error(failure)["message"] == (
        f"unable to obtain exclusive access to this record or 1 records: {account}"
    )
    assert sf.Account.update(account, {"M3ter_Id__c": "m-3"}) == 204


def test_a_value_outside_a_restricted_picklist_is_refused(sf, account):
    with pytest.raises(SalesforceMalformedRequest) as failure:
        sf.Account.update(account, {"M3ter_Sync_Status__c": "Synced"})
    error = _error(failure)
    assert error["errorCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    assert error["message"].endswith("bad value for restricted picklist field: Synced")


def test_a_value_longer_than_its_field_is_refused(sf, account):
    with pytest.raises(SalesforceMalformedRequest) as failure:
        sf.Account.update(account, {"M3ter_Id__c": "x" * 37})
    error = _error(failure)
    assert error["errorCode"] == "STRING_TOO_LONG"
    assert error["message"] == f"m3ter Id: data value too large: {'x' * 37} (max length=36)"


def test_a_datetime_that_is_not_one_fails_the_request_as_json(sf, account):
    with pytest.raises(SalesforceMalformedRequest) as failure:
        sf.Account.update(account, {"M3ter_Last_Synced__c": "yesterday"})
    assert _error(failure)["errorCode"] == "JSON_PARSER_ERROR"


def test_an_unknown_field_fails_the_request(sf, account):
    with pytest.raises(SalesforceMalformedRequest) as failure:
        sf.Account.update(account, {"Nope__c": "x"})
    assert _error(failure) == {
        "message": "No such column 'Nope__c' on sobject of type Account",
        "errorCode": "INVALID_FIELD",
    }


def test_calculated_and_system_fields_are_not_writable(sf):
    contract = sf.query("SELECT Id FROM Contract LIMIT 1")["records"][0]["Id"]
    for body in ({"EndDate": "2030-01-01"}, {"SystemModstamp": "2030-01-01T00:00:00Z"}):
        with pytest.raises(SalesforceMalformedRequest) as failure:
            sf.Contract.update(contract, body)
        assert _error(failure)["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"


def test_an_unknown_id_is_not_found(sf):
    with pytest.raises(SalesforceResourceNotFound) as failure:
        sf.Account.update("001000000000000AAA", {"M3ter_Id__c": "m"})
    assert _error(failure)["errorCode"] == "NOT_FOUND"


def test_a_delete_keeps_the_record_in_the_recycle_bin_and_a_write_to_it_is_refused(sf, account):
    assert sf.Account.delete(account) == 204
    assert _account(sf, account, "IsDeleted")["IsDeleted"] is True
    with pytest.raises(SalesforceResourceNotFound) as failure:
        sf.Account.update(account, {"M3ter_Id__c": "m"})
    assert _error(failure)["errorCode"] == "ENTITY_IS_DELETED"


def test_an_upsert_on_an_external_id_creates_then_updates(sf, org):
    assert sf.Account.upsert("External_Id__c/EXT-1", {"Name": "Upserted Co"}) == 201
    assert sf.Account.upsert("External_Id__c/ext-1", {"Name": "Renamed Co"}) == 200
    (record,) = sf.query("SELECT Name, OwnerId FROM Account WHERE External_Id__c = 'EXT-1'")[
        "records"
    ]
    assert (record["Name"], record["OwnerId"]) == ("Renamed Co", org.integration_user())


def test_an_upsert_on_an_external_id_two_records_share_answers_300(sf, account_ids):
    for record_id in (account_ids[next(_accounts)], account_ids[next(_accounts)]):
        sf.Account.update(record_id, {"External_Id__c": "TWICE"})
    with pytest.raises(SalesforceMoreThanOneRecord) as failure:
        sf.Account.upsert("External_Id__c/TWICE", {"Name": "Which?"})
    assert len(failure.value.content) == 2


def test_a_collection_update_answers_each_record_in_order(sf, org, account_ids):
    first, locked, third = (account_ids[next(_accounts)] for _ in range(3))
    org.lock_rows([locked])
    results = _collection(
        sf, [_record(i, M3ter_Id__c=f"c-{n}") for n, i in enumerate((first, locked, third))]
    )
    assert results[0] == {"id": first, "success": True, "errors": []}
    assert results[1]["success"] is False
    assert results[1]["errors"][0]["statusCode"] == "UNABLE_TO_LOCK_ROW"
    assert results[2] == {"id": third, "success": True, "errors": []}
    assert _account(sf, third, "M3ter_Id__c")["M3ter_Id__c"] == "c-2"
    assert _account(sf, locked, "M3ter_Id__c")["M3ter_Id__c"] is None


def test_all_or_none_rolls_every_record_back_when_one_fails(sf, account_ids):
    good, bad = (account_ids[next(_accounts)] for _ in range(2))
    results = _collection(
        sf,
        [_record(good, M3ter_Id__c="kept?"), _record(bad, M3ter_Sync_Status__c="Bogus")],
        all_or_none=True,
    )
    assert results[0]["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert results[1]["errors"][0]["statusCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    assert _account(sf, good, "M3ter_Id__c")["M3ter_Id__c"] is None


def test_a_collection_may_hold_records_of_several_objects(sf):
    opportunity = sf.query("SELECT Id FROM Opportunity LIMIT 1")["records"][0]["Id"]
    account = sf.query("SELECT Id FROM Account WHERE IsDeleted = false LIMIT 1")["records"][0]["Id"]
    results = _collection(
        sf,
        [
            {"attributes": {"type": "Opportunity"}, "id": opportunity, "M3ter_Id__c": "o-1"},
            _record(account, M3ter_Id__c="a-1"),
        ],
    )
    assert [r["id"] for r in results] == [opportunity, account]
    (record,) = sf.query(f"SELECT M3ter_Id__c FROM Opportunity WHERE Id = '{opportunity}'")[
        "records"
    ]
    assert record["M3ter_Id__c"] == "o-1"


def test_a_collection_of_more_than_200_records_is_refused(sf, account_ids):
    with pytest.raises(SalesforceMalformedRequest) as failure:
        _collection(sf, [_record(account_ids[0], M3ter_Id__c="x")] * 201)
    assert _error(failure)["errorCode"] == "EXCEEDED_ID_LIMIT"


def test_every_write_counts_against_the_daily_api_requests(sf, account):
    before = sf.limits()["DailyApiRequests"]["Remaining"]
    sf.Account.update(account, {"M3ter_Id__c": "q"})
    _collection(sf, [_record(account, M3ter_Id__c="r")])
    # The two writes and the second limits call.
    assert sf.limits()["DailyApiRequests"]["Remaining"] == before - 3
