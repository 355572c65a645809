"""pandera models of the staged m3ter entities: the rules a row must meet before it is loaded.

They take m3ter's published rules only (reference/m3ter-api.md §3), so that a row m3ter would
refuse is rejected here, with its reason, before any API call; where m3ter publishes no rule
they check only what is certain and leave the rest to m3ter, whose refusal is journaled. They
see flat columns only: nested values (pricing bands, segments, custom fields) are built in
DuckDB from columns checked here.
Text columns arrive as pyarrow-backed strings, so the regex checks run in Arrow, not per row.
"""

from __future__ import annotations

from typing import Annotated, Final

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from pipeline.mapping.spec import Entity

Text = Annotated[pd.StringDtype, "pyarrow", pd.NA]

# m3ter's code pattern (no control characters, inner spaces only), at most 80 characters.
CODE: Final = (
    r"^(?:[^\x00-\x1f\x7f\s]|[^\x00-\x1f\x7f\s](?:[^\x00-\x1f\x7f\s]| )*[^\x00-\x1f\x7f\s])$"
)
# m3ter never published the pattern of aggregation codes: what is certain is that a code holds
# no control characters and at most 80 characters; m3ter itself decides the rest (`apiCalls` is
# a real code), and its refusal is journaled.
AGGREGATION_CODE: Final = r"^[^\x00-\x1f\x7f]+$"
CURRENCY: Final = r"^[A-Z]{3}$"
DATE: Final = r"^\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])$"
DATETIME: Final = r"^\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])T\d{2}:\d{2}:\d{2}Z$"
EMAIL: Final = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"

# What each dataframe-level check means, for the reject's message.
MESSAGES: Final[dict[str, str]] = {
    "start_before_end": "startDate must be before endDate (m3ter end dates are exclusive)",
    "one_plan_side": "exactly one of planCode and planTemplateCode must be set",
    "plan_or_group": "exactly one of planCode and planGroupCode must be set",
    "one_aggregation_side": (
        "exactly one of aggregationCode and compoundAggregationCode must be set"
    ),
    "a_price": "a pricing needs a unitPrice or a fixedPrice",
    "no_negative_debit_price": "a DEBIT pricing cannot have a negative unitPrice or fixedPrice",
}


def _code(*, nullable: bool = False) -> object:
    return pa.Field(nullable=nullable, str_matches=CODE, str_length={"max_value": 80})


def _aggregation_code(*, nullable: bool = False) -> object:
    return pa.Field(nullable=nullable, str_matches=AGGREGATION_CODE, str_length={"max_value": 80})


def _name(*, nullable: bool = False) -> object:
    return pa.Field(nullable=nullable, str_length={"min_value": 1, "max_value": 200})


def _date(*, nullable: bool = False) -> object:
    return pa.Field(nullable=nullable, str_matches=DATE)


def _datetime(*, nullable: bool = False) -> object:
    return pa.Field(nullable=nullable, str_matches=DATETIME)


def _text(*, max_length: int | None = None, isin: list[str] | None = None) -> object:
    kwargs: dict[str, object] = {"nullable": True}
    if max_length is not None:
        kwargs["str_length"] = {"max_value": max_length}
    if isin is not None:
        kwargs["isin"] = isin
    return pa.Field(**kwargs)


def _starts_before_ends(df: pd.DataFrame) -> pd.Series:
    # Every date in a column has one format, so text order is time order.
    return df["endDate"].isna() | df["startDate"].isna() | (df["startDate"] < df["endDate"])


class _Staged(pa.DataFrameModel):
    class Config:
        strict = False  # customFields, segment and our own columns are not checked here
        coerce = False


class AccountSchema(_Staged):
    code: Series[Text] = _code()
    name: Series[Text] = _name()
    emailAddress: Series[Text] = pa.Field(str_matches=EMAIL)
    currency: Series[Text] = pa.Field(nullable=True, str_matches=CURRENCY)
    billEpoch: Series[Text] = _date(nullable=True)
    daysBeforeBillDue: Series[float] = pa.Field(nullable=True, ge=0)
    purchaseOrderNumber: Series[Text] = _text(max_length=100)
    parentAccountCode: Series[Text] = _code(nullable=True)


class ContractSchema(_Staged):
    code: Series[Text] = _code()
    name: Series[Text] = _name()
    accountCode: Series[Text] = _code()
    startDate: Series[Text] = _date()
    endDate: Series[Text] = _date()
    description: Series[Text] = _text(max_length=500)
    purchaseOrderNumber: Series[Text] = _text(max_length=100)

    @pa.dataframe_check
    def start_before_end(cls, df: pd.DataFrame) -> pd.Series:
        return _starts_before_ends(df)


class _Charged(_Staged):
    """A plan's and a plan group's own standing charge and minimum spend."""

    standingCharge: Series[float] = pa.Field(nullable=True, ge=0)
    minimumSpend: Series[float] = pa.Field(nullable=True, ge=0)
    standingChargeDescription: Series[Text] = _text(max_length=200)
    minimumSpendDescription: Series[Text] = _text(max_length=200)


class PlanSchema(_Charged):
    code: Series[Text] = _code()
    name: Series[Text] = _name()
    planTemplateCode: Series[Text] = _code()
    accountCode: Series[Text] = _code(nullable=True)


class PricingSchema(_Staged):
    code: Series[Text] = _code()
    planCode: Series[Text] = _code(nullable=True)
    planTemplateCode: Series[Text] = _code(nullable=True)
    aggregationCode: Series[Text] = _aggregation_code(nullable=True)
    compoundAggregationCode: Series[Text] = _aggregation_code(nullable=True)
    startDate: Series[Text] = _datetime()
    endDate: Series[Text] = _datetime(nullable=True)
    unitPrice: Series[float] = pa.Field(nullable=True)
    fixedPrice: Series[float] = pa.Field(nullable=True)
    type: Series[Text] = _text(isin=["DEBIT", "PRODUCT_CREDIT", "GLOBAL_CREDIT"])
    minimumSpend: Series[float] = pa.Field(nullable=True, ge=0)
    description: Series[Text] = _text(max_length=200)

    @pa.dataframe_check
    def start_before_end(cls, df: pd.DataFrame) -> pd.Series:
        return _starts_before_ends(df)

    @pa.dataframe_check
    def one_plan_side(cls, df: pd.DataFrame) -> pd.Series:
        return df["planCode"].isna() != df["planTemplateCode"].isna()

    @pa.dataframe_check
    def one_aggregation_side(cls, df: pd.DataFrame) -> pd.Series:
        return df["aggregationCode"].isna() != df["compoundAggregationCode"].isna()

    @pa.dataframe_check
    def a_price(cls, df: pd.DataFrame) -> pd.Series:
        return df["unitPrice"].notna() | df["fixedPrice"].notna()

    @pa.dataframe_check
    def no_negative_debit_price(cls, df: pd.DataFrame) -> pd.Series:
        debit = (df["type"].isna() | (df["type"] == "DEBIT")).astype(bool)
        negative = (df["unitPrice"] < 0) | (df["fixedPrice"] < 0)
        return ~(debit & negative)


class PlanGroupSchema(_Charged):
    code: Series[Text] = _code()
    name: Series[Text] = _name()
    currency: Series[Text] = pa.Field(str_matches=CURRENCY)
    accountCode: Series[Text] = _code(nullable=True)


class PlanGroupLinkSchema(_Staged):
    code: Series[Text] = _code()
    planGroupCode: Series[Text] = _code()
    planCode: Series[Text] = _code()


class AccountPlanSchema(_Staged):
    code: Series[Text] = _code()
    accountCode: Series[Text] = _code()
    planCode: Series[Text] = _code(nullable=True)
    planGroupCode: Series[Text] = _code(nullable=True)
    contractCode: Series[Text] = _code(nullable=True)
    startDate: Series[Text] = _datetime()
    endDate: Series[Text] = _datetime(nullable=True)
    billEpoch: Series[Text] = _date(nullable=True)
    childBillingMode: Series[Text] = _text(isin=["PARENT_SUMMARY", "PARENT_BREAKDOWN", "CHILD"])

    @pa.dataframe_check
    def start_before_end(cls, df: pd.DataFrame) -> pd.Series:
        return _starts_before_ends(df)

    @pa.dataframe_check
    def plan_or_group(cls, df: pd.DataFrame) -> pd.Series:
        return df["planCode"].isna() != df["planGroupCode"].isna()


class CommitmentSchema(_Staged):
    accountCode: Series[Text] = _code()
    contractCode: Series[Text] = _code(nullable=True)
    amount: Series[float] = pa.Field(gt=0)
    currency: Series[Text] = pa.Field(str_matches=CURRENCY)
    startDate: Series[Text] = _date()
    endDate: Series[Text] = _date()
    amountFirstBill: Series[float] = pa.Field(nullable=True, ge=0)
    amountPrePaid: Series[float] = pa.Field(nullable=True, ge=0)
    billEpoch: Series[Text] = _date(nullable=True)
    billingInterval: Series[float] = pa.Field(nullable=True, ge=1, le=365)
    billingOffset: Series[float] = pa.Field(nullable=True, ge=0, le=364)

    @pa.dataframe_check
    def start_before_end(cls, df: pd.DataFrame) -> pd.Series:
        return _starts_before_ends(df)


class CompoundAggregationSchema(_Staged):
    code: Series[Text] = _aggregation_code()
    name: Series[Text] = _name()
    calculation: Series[Text] = pa.Field(str_length={"min_value": 1})
    quantityPerUnit: Series[float] = pa.Field(gt=0)
    rounding: Series[Text] = pa.Field(isin=["UP", "DOWN", "NEAREST", "NONE"])
    unit: Series[Text] = pa.Field(str_length={"min_value": 1, "max_value": 50})
    productCode: Series[Text] = _code(nullable=True)


SCHEMAS: Final[dict[Entity, type[_Staged]]] = {
    "accounts": AccountSchema,
    "contracts": ContractSchema,
    "plans": PlanSchema,
    "pricings": PricingSchema,
    "plan_groups": PlanGroupSchema,
    "plan_group_links": PlanGroupLinkSchema,
    "account_plans": AccountPlanSchema,
    "commitments": CommitmentSchema,
    "compound_aggregations": CompoundAggregationSchema,
}
