"""The demo org's records, generated set-at-a-time inside DuckDB.

Every transactional table is filled by INSERT ... SELECT over `range()`; pseudo-random draws come
from `hash(seed, key, salt)` instead of `random()`, so one seed and one date always give the same
org, byte for byte and whatever the thread count, and a million order lines take seconds.

The data is shaped like the deals m3sync bills (DESIGN §3, §5): every deal chain (Opportunity →
Quote → Order, or an Asset) flags exactly one object with `Sync_To_M3ter__c`, timestamps crowd
into recent days with equal stamps at partition edges, and ~2% of records sit in the recycle bin.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import duckdb

from pipeline.salesforce.ids import duckdb_id_macro_sql, make_id
from pipeline.sandbox.catalog import CATALOG, CURRENCY_RATES
from pipeline.sandbox.salesforce.cpq_deals import generate_cpq_deals
from pipeline.sandbox.salesforce.mapping_records import records_of
from pipeline.sandbox.salesforce.schema import OrgKind, SObject, create_table_sql, org_schema

INTEGRATION_USERNAME = "integration@m3sync.example"
# Bumped whenever the generated data or its schema changes, so sandboxes regenerate a cached org.
GENERATOR_VERSION = 7
SCHEMA = "org"
DAY_MS = 86_400_000
HOUR_MS = 3_600_000

# (Username, Name, IsActive); list position + 1 is the user's sequence number.
USERS: tuple[tuple[str, str, bool], ...] = (
    ("admin@m3sync.example", "Dana Whitfield", True),
    (INTEGRATION_USERNAME, "m3sync Integration", True),
    ("avery.chen@m3sync.example", "Avery Chen", True),
    ("jordan.patel@m3sync.example", "Jordan Patel", True),
    ("sam.rivera@m3sync.example", "Sam Rivera", True),
    ("taylor.brooks@m3sync.example", "Taylor Brooks", True),
    ("morgan.lee@m3sync.example", "Morgan Lee", False),
)
_ADMIN, _FIRST_REP, _REPS = 1, 3, 5

# Deal chains per account by kind; order deals come in pairs sharing 10 lines (20 per account).
_ORDER_DEALS_PER_ACCOUNT = 4
_DEAL_PERCENT_OF_ACCOUNTS = {"won": 60, "quote": 30, "asset": 50, "open": 80, "lost": 40}
_CONTRACTS_PER_ACCOUNT = 0.8

# (weight, city, state, postal code, country, region, currency, phone country code)
_PLACES: tuple[tuple[Any, ...], ...] = (
    (10, "San Francisco", "CA", "94105", "United States", "NA", "USD", "+1"),
    (8, "New York", "NY", "10001", "United States", "NA", "USD", "+1"),
    (6, "Austin", "TX", "78701", "United States", "NA", "USD", "+1"),
    (5, "Chicago", "IL", "60601", "United States", "NA", "USD", "+1"),
    (5, "Seattle", "WA", "98101", "United States", "NA", "USD", "+1"),
    (4, "Boston", "MA", "02110", "United States", "NA", "USD", "+1"),
    (4, "Toronto", "ON", "M5H 2N2", "Canada", "NA", "USD", "+1"),
    (2, "Vancouver", "BC", "V6B 1A1", "Canada", "NA", "USD", "+1"),
    (8, "London", None, "EC2A 4NE", "United Kingdom", "EMEA", "GBP", "+44"),
    (3, "Manchester", None, "M1 1AE", "United Kingdom", "EMEA", "GBP", "+44"),
    (2, "Edinburgh", None, "EH1 1YZ", "United Kingdom", "EMEA", "GBP", "+44"),
    (5, "Berlin", None, "10115", "Germany", "EMEA", "EUR", "+49"),
    (3, "Munich", None, "80331", "Germany", "EMEA", "EUR", "+49"),
    (4, "Paris", None, "75002", "France", "EMEA", "EUR", "+33"),
    (2, "Lyon", None, "69002", "France", "EMEA", "EUR", "+33"),
    (3, "Amsterdam", None, "1012 AB", "Netherlands", "EMEA", "EUR", "+31"),
    (3, "Dublin", None, "D02 X285", "Ireland", "EMEA", "EUR", "+353"),
    (4, "Tokyo", None, "100-0005", "Japan", "APAC", "USD", "+81"),
    (3, "Sydney", "NSW", "2000", "Australia", "APAC", "USD", "+61"),
    (2, "Melbourne", "VIC", "3000", "Australia", "APAC", "USD", "+61"),
    (3, "Singapore", None, "048583", "Singapore", "APAC", "USD", "+65"),
    (3, "Bengaluru", "KA", "560001", "India", "APAC", "USD", "+91"),
    (3, "São Paulo", "SP", "01310-100", "Brazil", "LATAM", "USD", "+55"),
    (2, "Mexico City", "CDMX", "06600", "Mexico", "LATAM", "USD", "+52"),
)

_VOCABULARY: dict[str, list[str]] = {
    "brands": [
        "Northwind",
        "Contoso",
        "Fabrikam",
        "Tailspin",
        "Adatum",
        "Litware",
        "Proseware",
        "Woodgrove",
        "Lucerne",
        "Wingtip",
        "Alpine",
        "Blue Yonder",
        "Coho",
        "Humongous",
        "Relecloud",
        "Trey",
        "VanArsdel",
        "Wide World",
        "Bluefin",
        "Cedar",
        "Summit",
        "Harbor",
        "Granite",
        "Ironwood",
        "Lakeshore",
        "Meridian",
        "Nimbus",
        "Orion",
        "Pinnacle",
        "Quantum",
        "Redwood",
        "Silverline",
        "Tidewater",
        "Vertex",
        "Willow",
        "Zephyr",
        "Aurora",
        "Beacon",
        "Cobalt",
        "Evergreen",
    ],
    "cores": [
        "Analytics",
        "Systems",
        "Labs",
        "Logistics",
        "Health",
        "Media",
        "Financial",
        "Robotics",
        "Software",
        "Networks",
        "Energy",
        "Foods",
        "Retail",
        "Dynamics",
        "Cloud",
        "Data",
        "Capital",
        "Motors",
        "Pharma",
        "Studios",
    ],
    "suffixes": ["Inc.", "LLC", "Ltd", "Group", "Corp.", "Holdings", "Co.", "Partners"],
    "streets": [
        "Market St",
        "Main St",
        "Broadway",
        "Harbour Rd",
        "King St",
        "Station Rd",
        "Park Ave",
        "Elm St",
        "High St",
        "Mission St",
        "Queen St",
        "Oak Ave",
    ],
    "industries": ["Technology", "Finance", "Healthcare", "Retail", "Manufacturing", "Media"],
    "competitors": ["Legacy Billing Suite", "Homegrown Metering", "Spreadsheet Invoicing"],
}

# Committed quantity range per product (log-uniform), by ProductCode.
_QUANTITY_RANGE: dict[str, tuple[float, float]] = {
    "API-CALLS": (100_000, 50_000_000),
    "API-GW-REQ": (1_000_000, 200_000_000),
    "DATA-STORAGE-GB": (50, 50_000),
    "DATA-TRANSFER-GB": (100, 100_000),
    "COMPUTE-HRS": (100, 50_000),
    "INFERENCE-CALLS": (10_000, 5_000_000),
    "ACTIVE-USERS": (5, 2_000),
    "MESSAGES": (10_000, 10_000_000),
    "SUPPORT-TICKETS": (10, 500),
    "SUPPORT-HOURS": (5, 200),
    "DATA-BUNDLE": (100, 100_000),
    "COMPUTE-BUNDLE": (100, 50_000),
}
_DEFAULT_QUANTITY_RANGE = (1.0, 1_000.0)

_TEMP_TABLES = (
    "_g_place",
    "_g_product",
    "_g_rate",
    "_g_pbe",
    "_g_account",
    "_g_customer",
    "_g_contract",
    "_g_account_contract",
    "_g_deal",
    "_g_timeline",
    "_g_chain",
    "_g_line",
    "_g_total",
)
_TEMP_MACROS = ("_g_h", "_g_u", "_g_pick", "_g_user_id")


def generate_org(
    con: duckdb.DuckDBPyConnection,
    *,
    accounts: int,
    seed: int,
    as_of: dt.date,
    history_days: int | None = None,
    quiet_days: int = 0,
    kind: OrgKind = "demo",
) -> dict[str, int]:
    """Create schema `org` with every object's table (all fields, hidden ones included) and
    fill it; return row counts per object. The CPQ org has the demo's accounts and catalogue,
    and CPQ's deals instead of the standard ones. The first `quiet_days` days of the history
    hold the catalogue alone: accounts and deals come after them."""
    if accounts < 1:
        raise ValueError("accounts must be at least 1")
    schema = org_schema(kind)
    # Qualified by database: a file named org.duckdb makes a bare `org` ambiguous.
    database = con.execute("SELECT current_database()").fetchall()[0][0]
    target = '"' + database.replace('"', '""') + f'".{SCHEMA}'
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {target}")
    for obj in schema.objects:
        con.execute(f'DROP TABLE IF EXISTS {target}."{obj.name}"')
        con.execute(create_table_sql(obj, target))
    con.execute(duckdb_id_macro_sql())
    clock = _Clock.ending(as_of, history_days, quiet_days)
    generator = _Generator(con, target, accounts=accounts, seed=int(seed), clock=clock)
    try:
        generator.run([o for o in schema.objects if o.custom_metadata], kind)
    finally:
        generator.drop_helpers()
    counts = " UNION ALL ".join(
        f"SELECT '{obj.name}', count(*) FROM {target}.\"{obj.name}\"" for obj in schema.objects
    )
    found = dict(con.execute(counts).fetchall())
    return {obj.name: found[obj.name] for obj in schema.objects}


@dataclass(frozen=True)
class _Clock:
    """Epoch milliseconds of the generated history: from `history_start` to the end of `as_of`."""

    start_ms: int
    as_of_ms: int  # midnight starting as_of
    end_ms: int  # as_of 23:59:59.999, the latest instant any record may carry
    quiet_days: int = 0

    @classmethod
    def ending(cls, as_of: dt.date, history_days: int | None = None, quiet_days: int = 0) -> _Clock:
        as_of_ms = _epoch_ms(as_of)
        start_ms = _epoch_ms(history_start(as_of, history_days))
        if start_ms + (quiet_days + 2) * DAY_MS > as_of_ms:
            raise ValueError("quiet_days must leave at least two days of the history for deals")
        return cls(start_ms, as_of_ms, as_of_ms + DAY_MS - 1, quiet_days)

    @property
    def accounts_from_ms(self) -> int:
        """Accounts (and all deals) come after the catalogue, created in the first hour, and
        after the quiet days."""
        return self.start_ms + self.quiet_days * DAY_MS + HOUR_MS

    @property
    def accounts_until_ms(self) -> int:
        """The last account is a day old, so it has time for deals."""
        return self.end_ms - DAY_MS

    def timestamp(self, ms: int) -> dt.datetime:
        return dt.datetime(1970, 1, 1) + dt.timedelta(milliseconds=ms)


def history_start(as_of: dt.date, history_days: int | None = None) -> dt.date:
    """The org's first day: three years before `as_of`, or `history_days` before it."""
    if history_days is not None:
        if history_days < 2:
            raise ValueError("history_days must be at least 2")
        return as_of - dt.timedelta(days=history_days)
    try:
        return as_of.replace(year=as_of.year - 3)
    except ValueError:  # 29 February
        return as_of.replace(year=as_of.year - 3, day=28)


def _epoch_ms(day: dt.date) -> int:
    return (day - dt.date(1970, 1, 1)).days * DAY_MS


class _Generator:
    """One generation run: helper macros and temp tables, then one INSERT per object."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        target: str,
        *,
        accounts: int,
        seed: int,
        clock: _Clock,
    ) -> None:
        self.con = con
        self.target = target  # the qualified `org` schema
        self.accounts = accounts
        self.seed = seed
        self.clock = clock

    # -- plumbing ---------------------------------------------------------------------------------

    def run(self, metadata_types: Sequence[SObject], kind: OrgKind = "demo") -> None:
        self.create_helpers()
        self.organization_and_users()
        self.catalog()
        self.accounts_()
        if kind == "cpq":
            generate_cpq_deals(self)
        else:
            self.standard_deals()
        self.mapping_metadata(metadata_types)

    def standard_deals(self) -> None:
        self.contracts()
        self.deals()
        self.opportunities()
        self.quotes()
        self.orders()
        self.opportunity_line_items()
        self.quote_line_items()
        self.order_items()
        self.assets()

    def sql(self, statement: str) -> None:
        self.con.execute(statement)

    def create_helpers(self) -> None:
        """`_g_u(key, salt)` is a uniform draw in [0, 1), `_g_pick(key, salt, n)` one in [0, n).

        The outer `hash` matters: DuckDB combines the hashes of several arguments so simply that
        two salts give strongly correlated draws; re-hashing the combination decorrelates them.
        """
        user_ids = ", ".join(f"'{make_id('005', n)}'" for n in range(1, len(USERS) + 1))
        self.sql(f"""
            CREATE OR REPLACE TEMP MACRO _g_h(k, salt) AS
                hash(hash({self.seed}::BIGINT, k::BIGINT, salt));
            CREATE OR REPLACE TEMP MACRO _g_u(k, salt) AS
                (_g_h(k, salt) >> 11)::DOUBLE / 9007199254740992.0;
            CREATE OR REPLACE TEMP MACRO _g_pick(k, salt, n) AS
                (_g_h(k, salt) % (n)::UBIGINT)::BIGINT;
            CREATE OR REPLACE TEMP MACRO _g_user_id(n) AS [{user_ids}][n];
        """)
        slots = [(slot, *place[1:]) for place in _PLACES for slot in range(place[0])]
        self.sql("""CREATE OR REPLACE TEMP TABLE _g_place (slot INTEGER, city VARCHAR,
                    state VARCHAR, postal VARCHAR, country VARCHAR, region VARCHAR,
                    currency VARCHAR, phone_cc VARCHAR)""")
        self.con.executemany(
            "INSERT INTO _g_place VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(n, *row[1:]) for n, row in enumerate(slots)],
        )

    def drop_helpers(self) -> None:
        for table in _TEMP_TABLES:
            self.con.execute(f"DROP TABLE IF EXISTS temp.main.{table}")
        for macro in _TEMP_MACROS:
            self.con.execute(f"DROP MACRO IF EXISTS temp.main.{macro}")

    def fill(
        self,
        obj: str,
        base: str,
        columns: str,
        ids: Mapping[str, tuple[str, str]],
        *,
        owned: bool = True,
        touched: str = "created_ms",
        recent: bool = True,
    ) -> None:
        """Insert one object's rows from `base`, adding Ids and the system audit fields.

        `base` yields one row per record with `seq` (Id sequence, in creation order), `hkey`
        (hash key), `created_ms`, `deleted`, `del_ms` and `owner_idx`; `ids` maps each Id column
        to its key prefix and sequence expression (null sequence, null Id); `touched` is the
        latest edit the record is known to have had (a won opportunity was edited when it closed).

        Live records are numbered in `seq` order (`live_rank`): ranks 1-8 of every 200 are edited
        on one of the last 8 days, so every nightly window has work; ranks 9-24 are edited in
        pairs at the midnights of those days and ranks 25-27 at one shared instant, so equal
        stamps sit on partition edges. Other records are edited at times skewed towards their
        creation; one in ten also gets a later system update (SystemModstamp only). Reference
        data (`recent=False`: the catalogue) gets no recent edits: a product change re-stages every
        line item that bills it, which real catalogues do rarely.
        """
        c = self.clock
        shared_ms = c.as_of_ms - 3 * DAY_MS + 51_936_250  # 14:25:36.250, three days back
        stamp = (
            "NULL::BIGINT"
            if not recent
            else f"""CASE
            WHEN (live_rank - 1) % 200 < 8
                THEN {c.as_of_ms} - ((live_rank - 1) % 200) * {DAY_MS}
                    + _g_pick(hkey, '{obj}:time_of_day', {DAY_MS})
            WHEN live_rank BETWEEN 9 AND 24 THEN {c.as_of_ms} - ((live_rank - 9) // 2) * {DAY_MS}
            WHEN live_rank BETWEEN 25 AND 27 THEN {shared_ms}
        END"""
        )
        last_modified = f"""CASE
            WHEN deleted THEN created_ms
                + CAST(floor((del_ms - created_ms) * pow(_g_u(hkey, '{obj}:lm'), 4)) AS BIGINT)
            WHEN stamp_ms >= created_ms THEN stamp_ms
            WHEN _g_u(hkey, '{obj}:fresh') < 0.3 THEN created_ms
            ELSE created_ms
                + CAST(floor(({c.end_ms} - created_ms) * pow(_g_u(hkey, '{obj}:lm'), 4)) AS BIGINT)
        END"""
        system_modstamp = f"""CASE
            WHEN deleted THEN del_ms
            WHEN live_rank BETWEEN 9 AND 27 OR _g_u(hkey, '{obj}:bump') >= 0.1 THEN lm_ms
            ELSE least(lm_ms + 60000 + _g_pick(hkey, '{obj}:bump_ms', 840000), {c.end_ms})
        END"""
        owner = ', _g_user_id(owner_idx) AS "OwnerId"' if owned else ""
        id15 = "".join(
            f", {_id15(prefix, seq, f'_id15_{name}')}" for name, (prefix, seq) in ids.items()
        )
        id18 = "".join(f', {_id18(f"_id15_{name}")} AS "{name}"' for name in ids)
        self.sql(f"""
            INSERT INTO {self.target}."{obj}" BY NAME
            WITH base AS ({base}),
            ranked AS (
                SELECT *, CASE WHEN NOT deleted THEN {stamp} END AS stamp_ms
                FROM (SELECT *, row_number() OVER (PARTITION BY deleted ORDER BY seq) AS live_rank
                      FROM base)
            ),
            timed AS (SELECT *, greatest({last_modified}, {touched}) AS lm_ms FROM ranked),
            identified AS (SELECT *{id15} FROM timed)
            SELECT {columns}{id18},
                deleted AS "IsDeleted",
                epoch_ms(created_ms) AS "CreatedDate",
                epoch_ms(lm_ms) AS "LastModifiedDate",
                epoch_ms({system_modstamp}) AS "SystemModstamp",
                _g_user_id(CASE WHEN _g_u(hkey, '{obj}:by') < 0.15 THEN {_ADMIN}
                                ELSE owner_idx END) AS "CreatedById",
                _g_user_id(CASE WHEN lm_ms > created_ms AND _g_u(hkey, '{obj}:mod_by') < 0.2
                                THEN {_ADMIN} ELSE owner_idx END) AS "LastModifiedById"
                {owner}
            FROM identified
            ORDER BY seq
        """)

    # -- reference data ---------------------------------------------------------------------------

    def organization_and_users(self) -> None:
        start = self.clock.timestamp(self.clock.start_ms)
        self.con.execute(
            f"""INSERT INTO {self.target}."Organization"
                VALUES (?, 'm3sync Demo', true, 'Enterprise Edition', 'CS42', ?)""",
            [make_id("00D", 1), start],
        )
        self.con.executemany(
            f'INSERT INTO {self.target}."User" VALUES (?, ?, ?, ?, ?, ?)',
            [
                (make_id("005", n), username, name, username, active, start)
                for n, (username, name, active) in enumerate(USERS, start=1)
            ],
        )

    def catalog(self) -> None:
        """Products, the standard pricebook and one entry per product and currency."""
        self.sql("""CREATE OR REPLACE TEMP TABLE _g_product (idx INTEGER, id VARCHAR,
                    name VARCHAR, code VARCHAR, family VARCHAR, unit VARCHAR, unit_price DOUBLE,
                    unit_cost DOUBLE, m3ter_product VARCHAR, plan_template VARCHAR,
                    aggregation VARCHAR, calculation VARCHAR, qty_lo DOUBLE, qty_hi DOUBLE)""")
        rows = []
        for idx, p in enumerate(CATALOG):
            lo, hi = _QUANTITY_RANGE.get(p.product_code, _DEFAULT_QUANTITY_RANGE)
            rows.append(
                (
                    idx,
                    make_id("01t", idx + 1),
                    p.name,
                    p.product_code,
                    p.family,
                    p.unit,
                    p.unit_price,
                    round(p.unit_price * (0.35 + 0.05 * (idx % 5)), 6),
                    p.m3ter_product,
                    p.plan_template,
                    p.billed_aggregation,
                    p.calculation,
                    lo,
                    hi,
                )
            )
        self.con.executemany(f"INSERT INTO _g_product VALUES ({', '.join('?' * 14)})", rows)
        self.sql("CREATE OR REPLACE TEMP TABLE _g_rate (currency VARCHAR, rate DOUBLE, pos INT)")
        self.con.executemany(
            "INSERT INTO _g_rate VALUES (?, ?, ?)",
            [(cur, rate, n) for n, (cur, rate) in enumerate(CURRENCY_RATES.items())],
        )
        self.sql(f"""
            CREATE OR REPLACE TEMP TABLE _g_pbe AS
            SELECT *, {_id18("id15")} AS id FROM (
                SELECT p.idx AS product_idx, p.id AS product_id, p.name, p.code, r.currency,
                       r.rate, round(p.unit_price * r.rate, 6) AS unit_price,
                       p.idx * {len(CURRENCY_RATES)} + r.pos + 1 AS seq,
                       {_id15("01u", f"p.idx * {len(CURRENCY_RATES)} + r.pos + 1", "id15")}
                FROM _g_product p CROSS JOIN _g_rate r)""")
        start = self.clock.start_ms
        self.fill(
            "Product2",
            f"""
            SELECT *, idx + 1 AS seq, idx AS hkey, {start} + idx * 60000 AS created_ms,
                   false AS deleted, NULL::BIGINT AS del_ms, {_ADMIN} AS owner_idx
            FROM _g_product""",
            """
            name AS "Name", code AS "ProductCode", family AS "Family",
            true AS "IsActive", false AS "IsArchived",
            name || ', billed per ' || unit || ' in m3ter' AS "Description",
            unit AS "QuantityUnitOfMeasure", 'SKU-' || code AS "StockKeepingUnit",
            m3ter_product AS "M3ter_Product_Code__c", aggregation AS "M3ter_Aggregation_Code__c",
            plan_template AS "M3ter_Plan_Template_Code__c", calculation AS "M3ter_Calculation__c",
            unit_cost AS "Unit_Cost__c" """,
            {"Id": ("01t", "seq")},
            recent=False,
        )
        self.fill(
            "Pricebook2",
            f"""
            SELECT 1 AS seq, 0 AS hkey, {start} AS created_ms, false AS deleted,
                   NULL::BIGINT AS del_ms, {_ADMIN} AS owner_idx""",
            """
            'Standard Price Book' AS "Name", true AS "IsActive", true AS "IsStandard",
            'List prices in every currency' AS "Description" """,
            {"Id": ("01s", "seq")},
            recent=False,
        )
        self.fill(
            "PricebookEntry",
            f"""
            SELECT *, seq AS hkey, {start} + product_idx * 60000 + 30000 AS created_ms,
                   false AS deleted, NULL::BIGINT AS del_ms, {_ADMIN} AS owner_idx
            FROM _g_pbe""",
            f"""
            id AS "Id", name AS "Name", '{_PRICEBOOK_ID}' AS "Pricebook2Id",
            product_id AS "Product2Id", unit_price AS "UnitPrice", true AS "IsActive",
            false AS "UseStandardPrice", code AS "ProductCode", currency AS "CurrencyIsoCode" """,
            {},
            owned=False,
            recent=False,
        )

    # -- accounts and contracts -------------------------------------------------------------------

    def accounts_(self) -> None:
        """Accounts are created in Id order, from an hour after the catalogue, at a growing rate;
        ~8% are prospects that never buy (a quarter of those deleted)."""
        c, n = self.clock, self.accounts
        first, span = c.accounts_from_ms, c.accounts_until_ms - c.accounts_from_ms
        slots = sum(place[0] for place in _PLACES)
        v = _VOCABULARY
        self.sql(f"""
            CREATE OR REPLACE TEMP TABLE _g_account AS
            WITH drawn AS (
                SELECT i, p.* EXCLUDE (slot),
                    {first} + CAST(floor({span} * pow((i - 1 + _g_u(i, 'account:t')) / {n}, 0.75))
                        AS BIGINT) AS created_ms,
                    i > 1 AND _g_u(i, 'account:prospect') < 0.08 AS prospect,
                    {_FIRST_REP} + _g_pick(i, 'account:owner', {_REPS}) AS owner_idx,
                    {_pick_sql(v["brands"], "i", "account:brand")} AS brand,
                    {_pick_sql(v["cores"], "i", "account:core")} AS core,
                    {_pick_sql(v["suffixes"], "i", "account:suffix")} AS suffix,
                    CASE WHEN _g_u(i, 'account:tier') < 0.55 THEN 'Standard'
                         WHEN _g_u(i, 'account:tier') < 0.85 THEN 'Premium'
                         ELSE 'Enterprise' END AS tier,
                    _g_u(i, 'account:size') AS size
                FROM (SELECT range + 1 AS i FROM range({n})) a
                JOIN _g_place p ON p.slot = _g_pick(a.i, 'account:place', {slots})
            )
            SELECT * EXCLUDE (size, id15), {_id18("id15")} AS id,
                sum(CASE WHEN prospect THEN 0 ELSE 1 END) OVER (ORDER BY i) AS customers_upto,
                brand || ' ' || core || ' ' || suffix AS name,
                lower(regexp_replace(brand || '-' || core, '[^A-Za-z0-9]+', '-', 'g')) AS slug,
                CAST(round(CASE tier WHEN 'Standard' THEN 10 * pow(20, size)
                                     WHEN 'Premium' THEN 200 * pow(10, size)
                                     ELSE 2000 * pow(25, size) END) AS INTEGER) AS employees
            FROM (SELECT *, {_id15("001", "i", "id15")} FROM drawn)""")
        self.sql("""CREATE OR REPLACE TEMP TABLE _g_customer AS
                    SELECT row_number() OVER (ORDER BY i) - 1 AS k, i
                    FROM _g_account WHERE NOT prospect""")
        # One account in 20 has a blank Region__c, one in 20 a blank Tier__c.
        blank = "_g_pick(i // 20, 'account:blank_{0}', 20) = i % 20"
        self.fill(
            "Account",
            f"""
            SELECT a.*, a.i AS seq, a.i AS hkey,
                a.prospect AND _g_u(a.i, 'account:del') < 0.25 AS deleted,
                a.created_ms + 1000 + CAST(floor(({c.end_ms} - a.created_ms - 1000)
                    * _g_u(a.i, 'account:del_t')) AS BIGINT) AS del_ms,
                parent.i AS parent_i
            FROM _g_account a
            LEFT JOIN (SELECT i, _g_pick(i, 'account:parent_k', k) AS parent_k FROM _g_customer
                       WHERE k > 0 AND _g_u(i, 'account:parent') < 0.15) child ON child.i = a.i
            LEFT JOIN _g_customer parent ON parent.k = child.parent_k""",
            f"""
            id AS "Id", name AS "Name", 'ACC-' || lpad(i::VARCHAR, 7, '0') AS "AccountNumber",
            CASE WHEN prospect THEN 'Prospect'
                 WHEN _g_u(i, 'account:type') < 0.75 THEN 'Customer - Direct'
                 WHEN _g_u(i, 'account:type') < 0.95 THEN 'Customer - Channel'
                 ELSE 'Partner' END AS "Type",
            {_pick_sql(v["industries"], "i", "account:industry")} AS "Industry",
            (100 + _g_pick(i, 'account:street_no', 9800))::VARCHAR || ' '
                || {_pick_sql(v["streets"], "i", "account:street")} AS "BillingStreet",
            city AS "BillingCity", state AS "BillingState", postal AS "BillingPostalCode",
            country AS "BillingCountry",
            phone_cc || ' ' || (200 + _g_pick(i, 'account:phone_area', 700))::VARCHAR || ' 555 '
                || lpad(_g_pick(i, 'account:phone', 10000)::VARCHAR, 4, '0') AS "Phone",
            'https://www.' || slug || '.example' AS "Website",
            round(employees * (80000 + _g_pick(i, 'account:revenue', 170000)), -3)
                AS "AnnualRevenue",
            employees AS "NumberOfEmployees",
            currency AS "CurrencyIsoCode",
            CASE WHEN {blank.format("region")} THEN NULL ELSE region END AS "Region__c",
            CASE WHEN {blank.format("tier")} THEN NULL ELSE tier END AS "Tier__c",
            CASE WHEN _g_u(i, 'account:no_email') < 0.03 THEN NULL
                 ELSE 'billing@' || slug || '.example' END AS "Billing_Email__c",
            CASE WHEN _g_u(i, 'account:credit') < 0.4 THEN 'A'
                 WHEN _g_u(i, 'account:credit') < 0.75 THEN 'B'
                 WHEN _g_u(i, 'account:credit') < 0.95 THEN 'C' ELSE 'D' END
                AS "Credit_Rating__c" """,
            {"ParentId": ("001", "parent_i")},
        )

    def at_customer(self, keys: str, key: str, salt: str) -> str:
        """Rows of `keys`, each given a moment `at_ms` and a customer account created before it.

        Moments follow the growth of the customer base, and the account is drawn among the
        customers that existed at that moment: old accounts have more history, none has a burst
        of deals crammed between its creation and today.
        """
        c, n = self.clock, self.accounts
        first = c.accounts_from_ms
        span, account_span = c.end_ms - HOUR_MS - first, c.accounts_until_ms - first
        return f"""
            WITH moments AS (
                SELECT *, {first} + CAST(floor({span} * pow(_g_u({key}, '{salt}:t'), 0.6))
                    AS BIGINT) AS t_ms
                FROM ({keys})
            ),
            bounded AS (  -- accounts 1 .. i_limit were created before t_ms
                SELECT *, greatest(1, least({n}, CAST(floor({n} * pow(least(1.0,
                    (t_ms - {first}) / {account_span}), 4.0 / 3)) AS BIGINT) - 1)) AS i_limit
                FROM moments
            ),
            placed AS (
                SELECT b.*, _g_pick(b.{key}, '{salt}:account', lim.customers_upto) AS customer_k
                FROM bounded b JOIN _g_account lim ON lim.i = b.i_limit
            )
            SELECT p.* EXCLUDE (t_ms, i_limit, customer_k), a.i AS account_i, a.id AS account_id,
                a.name AS account_name, a.currency, a.owner_idx,
                greatest(p.t_ms, a.created_ms + 1000) AS at_ms
            FROM placed p
            JOIN _g_customer cu ON cu.k = p.customer_k
            JOIN _g_account a ON a.i = cu.i"""

    def contracts(self) -> None:
        """Contracts of customer accounts: only drafts are ever deleted, only activated ones are
        referenced by deals (the account's first one, when the deal starts within its term)."""
        c = self.clock
        n = int(self.accounts * _CONTRACTS_PER_ACCOUNT)
        self.sql(f"""
            CREATE OR REPLACE TEMP TABLE _g_contract AS
            WITH drawn AS (
                SELECT j, account_i, account_id, currency, owner_idx, at_ms AS created_ms,
                    CASE WHEN _g_u(j, 'contract:status') < 0.08 THEN 'Draft'
                         WHEN _g_u(j, 'contract:status') < 0.12 THEN 'In Approval Process'
                         ELSE 'Activated' END AS status,
                    [12, 12, 24, 36][1 + _g_pick(j, 'contract:term', 4)] AS term
                FROM ({self.at_customer(f"SELECT range AS j FROM range({n})", "j", "contract")})
            ),
            dated AS (
                SELECT *, row_number() OVER (ORDER BY created_ms, j) AS seq,
                    CAST(epoch_ms(created_ms) AS DATE)
                        + CAST(_g_pick(j, 'contract:start', 31) AS INTEGER) AS start_date
                FROM drawn
            )
            SELECT *, CAST(start_date + to_months(term) - INTERVAL 1 DAY AS DATE) AS end_date,
                {_id18("id15")} AS id
            FROM (SELECT *, {_id15("800", "seq", "id15")} FROM dated)""")
        self.sql("""
            CREATE OR REPLACE TEMP TABLE _g_account_contract AS
            SELECT account_i, id AS contract_id, created_ms AS contract_created_ms,
                   start_date AS contract_start, end_date AS contract_end
            FROM _g_contract WHERE status = 'Activated'
            QUALIFY row_number() OVER (PARTITION BY account_i ORDER BY created_ms, j) = 1""")
        self.fill(
            "Contract",
            f"""
            SELECT *, j AS hkey, status = 'Draft' AND _g_u(j, 'contract:del') < 0.25 AS deleted,
                created_ms + 1000 + CAST(floor(({c.end_ms} - created_ms - 1000)
                    * _g_u(j, 'contract:del_t')) AS BIGINT) AS del_ms
            FROM _g_contract""",
            f"""
            account_id AS "AccountId", start_date AS "StartDate",
            end_date AS "EndDate", term AS "ContractTerm", status AS "Status",
            CASE status WHEN 'Draft' THEN 'Draft' WHEN 'In Approval Process' THEN 'InApproval'
                        ELSE 'Activated' END AS "StatusCode",
            lpad(seq::VARCHAR, 8, '0') AS "ContractNumber",
            CASE WHEN status = 'Activated' THEN epoch_ms(created_ms) END AS "ActivatedDate",
            CASE WHEN status <> 'Draft' THEN CAST(epoch_ms(created_ms) AS DATE) END
                AS "CustomerSignedDate",
            CASE WHEN status = 'Activated' THEN CAST(epoch_ms(created_ms) AS DATE) END
                AS "CompanySignedDate",
            '{_PRICEBOOK_ID}' AS "Pricebook2Id",
            CASE WHEN _g_u(j, 'contract:terms') < 0.1 THEN 'Net 45 payment terms' END
                AS "SpecialTerms",
            currency AS "CurrencyIsoCode",
            {_pick_sql(_BILLING_FREQUENCIES, "j", "contract:frequency")}
                AS "Billing_Frequency__c" """,
            {"Id": ("800", "seq")},
        )

    # -- deal chains ------------------------------------------------------------------------------

    def deals(self) -> None:
        """One row per deal chain: its account, kind, products and which objects it has.

        Kinds: `order` (billed from the Order; some also carry an unsynced Opportunity and
        Quote), `won` (closed-won Opportunity billed from its line items), `quote` (a Quote
        syncing to its Opportunity), `asset` (a root Asset with component Assets), and `open` /
        `lost` opportunities that are never billed. Order deals come in pairs whose line counts
        add up to 10, so there are exactly 20 OrderItems per account.
        """
        n = self.accounts
        counts = {"order": _ORDER_DEALS_PER_ACCOUNT * n}
        counts.update({kind: n * pct // 100 for kind, pct in _DEAL_PERCENT_OF_ACCOUNTS.items()})
        selects, first = [], 0
        for kind, count in counts.items():
            selects.append(
                f"SELECT {first} + range AS deal_no, '{kind}' AS kind FROM range({count})"
            )
            first += count
        products = len(CATALOG)
        steps = [s for s in range(1, products) if math.gcd(s, products) == 1] or [1]
        lines = "1 + _g_pick(deal_no, 'deal:lines', 5)"
        self.sql(f"""
            CREATE OR REPLACE TEMP TABLE _g_deal AS
            WITH kinds AS ({" UNION ALL ".join(selects)}),
            drawn AS (
                SELECT * EXCLUDE (at_ms), at_ms AS opened_ms,
                    CASE kind
                        WHEN 'order' THEN CASE WHEN deal_no % 2 = 0
                            THEN 1 + _g_pick(deal_no // 2, 'deal:split', 9)
                            ELSE 9 - _g_pick(deal_no // 2, 'deal:split', 9) END
                        WHEN 'asset' THEN CASE WHEN _g_u(deal_no, 'deal:parts') < 0.6 THEN 1
                            WHEN _g_u(deal_no, 'deal:parts') < 0.85 THEN 2 ELSE 3 END
                        WHEN 'open' THEN CASE WHEN _g_u(deal_no, 'deal:no_lines') < 0.25 THEN 0
                            ELSE {lines} END
                        WHEN 'lost' THEN CASE WHEN _g_u(deal_no, 'deal:no_lines') < 0.4 THEN 0
                            ELSE {lines} END
                        ELSE {lines}
                    END AS n_lines,
                    _g_pick(deal_no, 'deal:product', {products}) AS product_offset,
                    {_pick_sql(steps, "deal_no", "deal:step")} AS product_step,
                    {_pick_sql([12, 12, 24, 36], "deal_no", "deal:term")} AS term,
                    kind NOT IN ('order', 'asset') OR kind = 'order'
                        AND _g_u(deal_no, 'deal:has_opp') < 0.3 AS has_opp,
                    kind = 'order' AS has_order,
                    kind = 'order' AND _g_u(deal_no, 'deal:draft') >= 0.05 AS order_activated,
                    kind = 'asset' AND _g_u(deal_no, 'deal:competitor') < 0.05 AS competitor,
                    {_pick_sql(_BILLING_FREQUENCIES, "deal_no", "deal:frequency")}
                        AS billing_frequency
                FROM ({self.at_customer("SELECT * FROM kinds", "deal_no", "deal")})
            )
            SELECT *,
                has_quote AND (kind = 'quote' OR kind = 'order'
                               AND _g_u(deal_no, 'deal:syncing') < 0.6) AS quote_syncing,
                order_activated OR kind IN ('won', 'quote') AS billed_agreement
            FROM (
                SELECT *,
                    CASE kind WHEN 'order' THEN has_opp AND _g_u(deal_no, 'deal:quote') < 0.5
                              WHEN 'quote' THEN true
                              WHEN 'open' THEN n_lines > 0 AND _g_u(deal_no, 'deal:quote') < 0.3
                              WHEN 'lost' THEN n_lines > 0 AND _g_u(deal_no, 'deal:quote') < 0.2
                              ELSE false END AS has_quote
                FROM drawn)""")
        self.schedule()
        self.chains()
        self.lines()

    def schedule(self) -> None:
        """When each object of a deal is created, closed, serviced and (for ~2%) deleted.

        Opportunity, then Quote, then Order follow each other by days, never past `as_of`;
        lines are created a minute after their header; a deleted chain goes in one stroke.
        """
        c = self.clock
        gap = f"least({{days}}::BIGINT * {DAY_MS}, ({c.end_ms} - opened_ms - 120000) // 3)"
        as_of = c.timestamp(c.as_of_ms).date()
        self.sql(f"""
            CREATE OR REPLACE TEMP TABLE _g_timeline AS
            WITH gaps AS (
                SELECT *,
                    1000 + CAST(floor({gap.format(days=30)} * _g_u(deal_no, 'deal:gap1'))
                        AS BIGINT) AS gap1,
                    1000 + CAST(floor({gap.format(days=20)} * _g_u(deal_no, 'deal:gap2'))
                        AS BIGINT) AS gap2
                FROM _g_deal
            ),
            created AS (
                SELECT *,
                    CASE WHEN has_opp THEN opened_ms END AS opp_c,
                    CASE WHEN has_quote THEN opened_ms + gap1 END AS quote_c,
                    CASE WHEN has_order THEN opened_ms + CASE WHEN has_opp THEN gap1 ELSE 0 END
                        + CASE WHEN has_quote THEN gap2 ELSE 0 END END AS order_c,
                    CASE WHEN kind = 'asset' THEN opened_ms END AS asset_c
                FROM gaps
            ),
            closed AS (
                SELECT *,
                    greatest(opp_c, quote_c, order_c, asset_c) AS last_c,
                    CASE kind WHEN 'order' THEN order_c WHEN 'asset' THEN asset_c
                              WHEN 'open' THEN greatest(opp_c, quote_c)
                              ELSE opened_ms + gap1 + gap2 END AS closed_ms
                FROM created
            ),
            dated AS (
                SELECT *,
                    CASE WHEN kind = 'open' THEN DATE '{as_of}'
                             + CAST(1 + _g_pick(deal_no, 'deal:close', 120) AS INTEGER)
                         ELSE CAST(epoch_ms(closed_ms) AS DATE) END AS close_date
                FROM closed
            ),
            serviced AS (
                SELECT *,
                    close_date + CAST(CASE WHEN kind = 'asset'
                        THEN _g_pick(deal_no, 'deal:install', 15)
                        ELSE _g_pick(deal_no, 'deal:start', 41) - 10 END AS INTEGER)
                        AS service_start
                FROM dated
            )
            SELECT d.*,
                CASE WHEN _g_u(deal_no, 'deal:evergreen') < 0.15 THEN NULL
                     ELSE CAST(service_start + to_months(term) - INTERVAL 1 DAY AS DATE) END
                    AS service_end,
                kind IN ('won', 'quote', 'open', 'lost') AND _g_u(deal_no, 'deal:del') < 0.03
                    OR kind = 'asset' AND _g_u(deal_no, 'deal:del') < 0.02 AS chain_deleted,
                kind = 'order' AND _g_u(deal_no, 'deal:del') < 0.02 AS order_deleted,
                greatest(last_c, closed_ms) + 61000
                    + CAST(floor(({c.end_ms} - greatest(last_c, closed_ms) - 61000)
                                 * _g_u(deal_no, 'deal:del_t')) AS BIGINT) AS del_ms,
                CASE WHEN kind IN ('order', 'won', 'quote') AND ac.contract_created_ms < last_c
                          AND service_start BETWEEN ac.contract_start AND ac.contract_end
                          AND _g_u(deal_no, 'deal:contract') < 0.8
                     THEN ac.contract_id END AS contract_id
            FROM serviced d
            LEFT JOIN _g_account_contract ac ON ac.account_i = d.account_i""")

    def chains(self) -> None:
        """Ids of each deal's header records, and where its line Ids start, in creation order."""
        self.sql(f"""
            CREATE OR REPLACE TEMP TABLE _g_chain AS
            WITH ranked AS (
                SELECT *,
                    row_number() OVER (PARTITION BY has_opp ORDER BY opp_c, deal_no) AS opp_rank,
                    sum(n_lines) OVER (PARTITION BY has_opp ORDER BY opp_c, deal_no)
                        - n_lines AS opp_lines_before,
                    row_number() OVER (PARTITION BY has_quote ORDER BY quote_c, deal_no)
                        AS quote_rank,
                    sum(n_lines) OVER (PARTITION BY has_quote ORDER BY quote_c, deal_no)
                        - n_lines AS quote_lines_before,
                    row_number() OVER (PARTITION BY has_order ORDER BY order_c, deal_no)
                        AS order_rank,
                    sum(n_lines) OVER (PARTITION BY has_order ORDER BY order_c, deal_no)
                        - n_lines AS order_lines_before,
                    sum(n_lines) OVER (PARTITION BY kind = 'asset' ORDER BY asset_c, deal_no)
                        - n_lines AS asset_lines_before
                FROM _g_timeline
            ),
            sequenced AS (
                SELECT * EXCLUDE (opp_rank, opp_lines_before, quote_rank, quote_lines_before,
                                  order_rank, order_lines_before, asset_lines_before),
                    CASE WHEN has_opp THEN opp_rank END AS opp_seq,
                    CASE WHEN has_opp THEN CAST(opp_lines_before AS BIGINT) END AS oli_offset,
                    CASE WHEN has_quote THEN quote_rank END AS quote_seq,
                    CASE WHEN has_quote THEN CAST(quote_lines_before AS BIGINT) END AS qli_offset,
                    CASE WHEN has_order THEN order_rank END AS order_seq,
                    CASE WHEN has_order THEN CAST(order_lines_before AS BIGINT) END AS item_offset,
                    CASE WHEN kind = 'asset' THEN CAST(asset_lines_before AS BIGINT) END
                        AS asset_offset,
                    CASE WHEN billed_agreement AND service_end IS NOT NULL
                              AND _g_u(deal_no, 'deal:prepay') < 0.3
                         THEN 0.2 + 0.3 * _g_u(deal_no, 'deal:prepay_share') END AS prepay_share
                FROM ranked
            ),
            identified AS (
                SELECT *, {_id15("006", "opp_seq", "opp15")},
                    {_id15("0Q0", "quote_seq", "quote15")}, {_id15("801", "order_seq", "order15")}
                FROM sequenced
            )
            SELECT * EXCLUDE (opp15, quote15, order15), {_id18("opp15")} AS opp_id,
                {_id18("quote15")} AS quote_id, {_id18("order15")} AS order_id
            FROM identified""")

    def lines(self) -> None:
        """The product lines of every deal; Opportunity, Quote and Order lines mirror them."""
        c = self.clock
        self.sql(f"""
            CREATE OR REPLACE TEMP TABLE _g_line AS
            WITH exploded AS (
                SELECT *, deal_no * 16 + line_no AS line_key
                FROM (SELECT deal_no, unnest(range(n_lines)) AS line_no, product_offset,
                             product_step, currency, has_order, order_deleted, order_c,
                             service_start, service_end
                      FROM _g_chain WHERE n_lines > 0)
            ),
            drawn AS (
                SELECT l.*, p.id AS product_id, p.name AS product_name, p.code AS product_code,
                    pb.id AS pbe_id, pb.unit_price AS list_price,
                    p.unit_cost * pb.rate AS unit_cost,
                    p.qty_lo * pow(p.qty_hi / p.qty_lo, _g_u(line_key, 'line:quantity')) AS raw_qty,
                    CASE WHEN _g_u(line_key, 'line:discounted') < 0.55 THEN 0
                         ELSE 5 * (1 + _g_pick(line_key, 'line:discount', 5)) END AS discount
                FROM exploded l
                JOIN _g_product p ON p.idx = (l.product_offset + l.line_no * l.product_step)
                    % {len(CATALOG)}
                JOIN _g_pbe pb ON pb.product_idx = p.idx AND pb.currency = l.currency
            ),
            priced AS (
                SELECT * EXCLUDE (raw_qty),
                    greatest(1, round(raw_qty, 1 - CAST(floor(log10(raw_qty)) AS INTEGER)))
                        AS quantity,
                    round(list_price * (100 - discount) / 100, 6) AS unit_price
                FROM drawn
            )
            SELECT deal_no, line_no, line_key, product_id, product_name, product_code, pbe_id,
                list_price, unit_cost, quantity, unit_price,
                CAST(round(quantity * unit_price * 100) AS BIGINT) AS total_cents,
                has_order AND NOT order_deleted AND _g_u(line_key, 'line:del') < 0.005
                    AS item_deleted,
                order_c + 61000 + CAST(floor(({c.end_ms} - order_c - 61000)
                    * _g_u(line_key, 'line:del_t')) AS BIGINT) AS item_del_ms,
                CASE WHEN line_no > 0 AND _g_u(line_key, 'line:later') < 0.1
                     THEN least(CAST(service_start + to_months(1 + _g_pick(line_key,
                                     'line:later_months', 3)) AS DATE),
                                coalesce(service_end, DATE '9999-12-31'))
                     ELSE service_start END AS item_service_date
            FROM priced""")
        self.sql("""
            CREATE OR REPLACE TEMP TABLE _g_total AS
            SELECT deal_no, CAST(sum(total_cents) AS BIGINT) AS lines_cents,
                   CAST(sum(total_cents) FILTER (WHERE NOT item_deleted) AS BIGINT) AS order_cents,
                   count(*) AS line_count
            FROM _g_line GROUP BY deal_no""")

    # -- agreement headers ------------------------------------------------------------------------

    def opportunities(self) -> None:
        prepay = _prepayment_sql("kind = 'won'", "lines_cents")
        self.fill(
            "Opportunity",
            f"""
            SELECT c.*, t.lines_cents, opp_seq AS seq, deal_no AS hkey, opp_c AS created_ms,
                chain_deleted AS deleted,
                CASE kind WHEN 'open' THEN {_pick_sql(_OPEN_STAGES, "deal_no", "opp:stage")}
                          WHEN 'lost' THEN 'Closed Lost' ELSE 'Closed Won' END AS stage,
                {_pick_sql(_OPPORTUNITY_TYPES, "deal_no", "opp:type")} AS opp_type
            FROM _g_chain c LEFT JOIN _g_total t USING (deal_no)
            WHERE c.has_opp""",
            f"""
            opp_id AS "Id",
            account_name || ' - ' || opp_type || ' ' || year(close_date) AS "Name",
            account_id AS "AccountId", stage AS "StageName", close_date AS "CloseDate",
            coalesce(lines_cents / 100.0,
                     round(5000 * pow(200, _g_u(deal_no, 'opp:amount')), -2)) AS "Amount",
            CASE stage WHEN 'Prospecting' THEN 10 WHEN 'Qualification' THEN 20
                       WHEN 'Proposal/Price Quote' THEN 50 WHEN 'Negotiation/Review' THEN 75
                       WHEN 'Closed Won' THEN 100 ELSE 0 END AS "Probability",
            opp_type AS "Type",
            stage IN ('Closed Won', 'Closed Lost') AS "IsClosed",
            stage = 'Closed Won' AS "IsWon",
            CASE stage WHEN 'Proposal/Price Quote' THEN 'Best Case'
                       WHEN 'Negotiation/Review' THEN 'Commit' WHEN 'Closed Won' THEN 'Closed'
                       WHEN 'Closed Lost' THEN 'Omitted' ELSE 'Pipeline' END
                AS "ForecastCategoryName",
            '{_PRICEBOOK_ID}' AS "Pricebook2Id",
            CASE WHEN kind = 'won' THEN contract_id END AS "ContractId",
            CASE WHEN quote_syncing THEN quote_id END AS "SyncedQuoteId",
            n_lines > 0 AS "HasOpportunityLineItem",
            {_pick_sql(_LEAD_SOURCES, "deal_no", "opp:source")} AS "LeadSource",
            CASE WHEN kind = 'open' THEN {_pick_sql(_NEXT_STEPS, "deal_no", "opp:next")} END
                AS "NextStep",
            currency AS "CurrencyIsoCode",
            kind = 'won' AS "Sync_To_M3ter__c",
            {prepay} AS "Prepayment_Amount__c",
            CASE WHEN stage <> 'Closed Lost' THEN service_start END AS "Service_Start_Date__c",
            CASE WHEN stage <> 'Closed Lost' THEN service_end END AS "Service_End_Date__c",
            billing_frequency AS "Billing_Frequency__c" """,
            {},
            touched="closed_ms",
        )

    def quotes(self) -> None:
        prepay = _prepayment_sql("kind = 'quote'", "lines_cents")
        self.fill(
            "Quote",
            """
            SELECT c.*, t.lines_cents, t.line_count, quote_seq AS seq, deal_no AS hkey,
                quote_c AS created_ms, chain_deleted AS deleted
            FROM _g_chain c JOIN _g_total t USING (deal_no)
            WHERE c.has_quote""",
            f"""
            quote_id AS "Id", account_name || ' - Quote ' || seq AS "Name",
            lpad(seq::VARCHAR, 8, '0') AS "QuoteNumber",
            opp_id AS "OpportunityId", account_id AS "AccountId",
            CASE WHEN kind = 'quote' THEN contract_id END AS "ContractId",
            '{_PRICEBOOK_ID}' AS "Pricebook2Id",
            CASE kind WHEN 'open' THEN {_pick_sql(_OPEN_QUOTE_STATUSES, "deal_no", "quote:st")}
                      WHEN 'lost' THEN {_pick_sql(_LOST_QUOTE_STATUSES, "deal_no", "quote:st")}
                      ELSE 'Accepted' END AS "Status",
            CAST(epoch_ms(quote_c) AS DATE) + 30 AS "ExpirationDate",
            quote_syncing AS "IsSyncing",
            lines_cents / 100.0 AS "Subtotal", lines_cents / 100.0 AS "TotalPrice",
            lines_cents / 100.0 AS "GrandTotal",
            line_count AS "LineItemCount",
            currency AS "CurrencyIsoCode",
            kind = 'quote' AS "Sync_To_M3ter__c",
            {prepay} AS "Prepayment_Amount__c",
            service_start AS "Service_Start_Date__c", service_end AS "Service_End_Date__c",
            billing_frequency AS "Billing_Frequency__c" """,
            {},
            owned=False,
            touched="greatest(created_ms, closed_ms)",
        )

    def orders(self) -> None:
        prepay = _prepayment_sql("order_activated", "order_cents")
        self.fill(
            "Order",
            f"""
            SELECT c.*, t.order_cents, order_seq AS seq, deal_no AS hkey, order_c AS created_ms,
                order_deleted AS deleted,
                {_pick_sql(_ORDER_TYPES, "deal_no", "order:type")} AS order_type
            FROM _g_chain c JOIN _g_total t USING (deal_no)
            WHERE c.has_order""",
            f"""
            order_id AS "Id", account_id AS "AccountId",
            account_name || ' - ' || order_type || ' order' AS "Name",
            service_start AS "EffectiveDate", service_end AS "EndDate",
            CASE WHEN order_activated THEN 'Activated' ELSE 'Draft' END AS "Status",
            CASE WHEN order_activated THEN 'Activated' ELSE 'Draft' END AS "StatusCode",
            lpad(seq::VARCHAR, 8, '0') AS "OrderNumber",
            contract_id AS "ContractId", opp_id AS "OpportunityId", quote_id AS "QuoteId",
            '{_PRICEBOOK_ID}' AS "Pricebook2Id",
            order_cents / 100.0 AS "TotalAmount",
            order_type AS "Type",
            CASE WHEN order_activated THEN epoch_ms(order_c) END AS "ActivatedDate",
            CASE WHEN _g_u(deal_no, 'order:po') < 0.6
                 THEN 'PO-' || lpad(_g_pick(deal_no, 'order:po_number', 1000000)::VARCHAR, 6, '0')
                 END AS "PoNumber",
            currency AS "CurrencyIsoCode",
            order_activated AS "Sync_To_M3ter__c",
            {prepay} AS "Prepayment_Amount__c",
            billing_frequency AS "Billing_Frequency__c" """,
            {},
        )

    # -- line items and assets --------------------------------------------------------------------

    _LINE_VALUES = """
        product_id AS "Product2Id", pbe_id AS "PricebookEntryId",
        quantity AS "Quantity", unit_price AS "UnitPrice", list_price AS "ListPrice" """

    def opportunity_line_items(self) -> None:
        self.fill(
            "OpportunityLineItem",
            """
            SELECT l.*, c.opp_id, c.owner_idx, c.service_start, c.service_end, c.del_ms,
                c.oli_offset + l.line_no + 1 AS seq, l.line_key AS hkey,
                c.opp_c + 60000 AS created_ms, c.chain_deleted AS deleted
            FROM _g_line l JOIN _g_chain c USING (deal_no)
            WHERE c.has_opp""",
            f"""
            opp_id AS "OpportunityId", {self._LINE_VALUES},
            product_code AS "ProductCode", product_name AS "Name",
            total_cents / 100.0 AS "TotalPrice", service_start AS "ServiceDate",
            line_no + 1 AS "SortOrder", service_end AS "End_Date__c" """,
            {"Id": ("00k", "seq")},
            owned=False,
        )

    def quote_line_items(self) -> None:
        self.fill(
            "QuoteLineItem",
            """
            SELECT l.*, c.quote_id, c.oli_offset, c.owner_idx, c.service_start, c.service_end,
                c.del_ms, c.qli_offset + l.line_no + 1 AS seq, l.line_key AS hkey,
                c.quote_c + 60000 AS created_ms, c.chain_deleted AS deleted
            FROM _g_line l JOIN _g_chain c USING (deal_no)
            WHERE c.has_quote""",
            f"""
            quote_id AS "QuoteId", {self._LINE_VALUES},
            lpad(seq::VARCHAR, 8, '0') AS "LineNumber",
            total_cents / 100.0 AS "Subtotal", total_cents / 100.0 AS "TotalPrice",
            service_start AS "ServiceDate", line_no + 1 AS "SortOrder",
            service_end AS "End_Date__c" """,
            {"Id": ("0QL", "seq"), "OpportunityLineItemId": ("00k", "oli_offset + line_no + 1")},
            owned=False,
        )

    def order_items(self) -> None:
        self.fill(
            "OrderItem",
            """
            SELECT l.*, c.order_id, c.has_quote, c.qli_offset, c.owner_idx, c.service_end,
                c.item_offset + l.line_no + 1 AS seq, l.line_key AS hkey,
                c.order_c + 60000 AS created_ms, c.order_deleted OR l.item_deleted AS deleted,
                CASE WHEN c.order_deleted THEN c.del_ms ELSE l.item_del_ms END AS del_ms
            FROM _g_line l JOIN _g_chain c USING (deal_no)
            WHERE c.has_order""",
            f"""
            order_id AS "OrderId", {self._LINE_VALUES},
            total_cents / 100.0 AS "TotalPrice",
            item_service_date AS "ServiceDate", service_end AS "EndDate",
            lpad(seq::VARCHAR, 10, '0') AS "OrderItemNumber",
            round((unit_price - unit_cost) / unit_price * 100, 2) AS "Internal_Margin__c" """,
            {
                "Id": ("802", "seq"),
                "QuoteLineItemId": ("0QL", "CASE WHEN has_quote THEN qli_offset + line_no + 1 END"),
            },
            owned=False,
        )

    def assets(self) -> None:
        """Asset deals: a root asset (the billed one) and component assets beneath it."""
        as_of = self.clock.timestamp(self.clock.as_of_ms).date()
        self.fill(
            "Asset",
            """
            SELECT l.*, c.account_id, c.owner_idx, c.currency, c.competitor, c.close_date,
                c.service_start, c.service_end, c.del_ms,
                c.asset_offset + l.line_no + 1 AS seq, c.asset_offset + 1 AS root_seq,
                l.line_key AS hkey, c.asset_c + CASE WHEN l.line_no > 0 THEN 60000 ELSE 0 END
                    AS created_ms,
                c.chain_deleted AS deleted
            FROM _g_line l JOIN _g_chain c USING (deal_no)
            WHERE c.kind = 'asset'""",
            f"""
            CASE WHEN competitor
                 THEN {_pick_sql(_VOCABULARY["competitors"], "line_key", "asset:competitor")}
                 ELSE product_name END AS "Name",
            account_id AS "AccountId",
            CASE WHEN NOT competitor THEN product_id END AS "Product2Id",
            'SN-' || upper(lpad(to_hex(_g_pick(line_key, 'asset:serial', 1099511627776)), 10,
                                '0')) AS "SerialNumber",
            CASE WHEN service_end < DATE '{as_of}' THEN 'Obsolete'
                 WHEN _g_u(line_key, 'asset:status') < 0.7 THEN 'Installed'
                 ELSE 'Registered' END AS "Status",
            quantity AS "Quantity", CASE WHEN NOT competitor THEN unit_price END AS "Price",
            close_date AS "PurchaseDate", service_start AS "InstallDate",
            service_end AS "UsageEndDate", competitor AS "IsCompetitorProduct",
            currency AS "CurrencyIsoCode",
            line_no = 0 AND NOT competitor AS "Sync_To_M3ter__c" """,
            {
                "Id": ("02i", "seq"),
                "RootAssetId": ("02i", "root_seq"),
                "ParentId": ("02i", "CASE WHEN line_no > 0 THEN root_seq END"),
            },
        )

    # -- custom metadata --------------------------------------------------------------------------

    def mapping_metadata(self, types: Sequence[SObject]) -> None:
        """The default mapping records: reference data, so a plain executemany is enough."""
        stamp = self.clock.timestamp(self.clock.start_ms + DAY_MS)
        for obj in types:
            names = [f.name for f in obj.fields]
            rows = []
            for n, record in enumerate(records_of(obj.name), start=1):
                values = {
                    **record.columns(),
                    "Id": make_id(obj.key_prefix, n),
                    "SystemModstamp": stamp,
                }
                unknown = {k for k, v in values.items() if v is not None} - set(names)
                if unknown:
                    raise ValueError(f"{record.developer_name}: {obj.name} has no {unknown}")
                rows.append([values.get(name) for name in names])
            if rows:
                columns = ", ".join(f'"{name}"' for name in names)
                self.con.executemany(
                    f'INSERT INTO {self.target}."{obj.name}" ({columns}) '
                    f"VALUES ({', '.join('?' * len(names))})",
                    rows,
                )


_PRICEBOOK_ID = make_id("01s", 1)
_BILLING_FREQUENCIES = ("Monthly", "Monthly", "Quarterly", "Annual")
_OPEN_STAGES = ("Prospecting", "Qualification", "Proposal/Price Quote", "Negotiation/Review")
_OPPORTUNITY_TYPES = ("New Business", "New Business", "Existing Business", "Renewal")
_ORDER_TYPES = ("New", "New", "New", "Upsell", "Renewal")
_LEAD_SOURCES = ("Web", "Partner Referral", "Trade Show", "Other")
_NEXT_STEPS = ("Schedule demo", "Send proposal", "Security review", "Confirm budget")
_OPEN_QUOTE_STATUSES = ("Draft", "Needs Review", "In Review", "Approved", "Presented")
_LOST_QUOTE_STATUSES = ("Denied", "Rejected")


def _pick_sql(values: Sequence[object], key: str, salt: str) -> str:
    """A SQL expression choosing one of `values` (module constants) by hash of `key`."""
    literals = ", ".join(
        str(v) if isinstance(v, int) else "'" + str(v).replace("'", "''") + "'" for v in values
    )
    return f"[{literals}][1 + _g_pick({key}, '{salt}', {len(values)})]"


def _prepayment_sql(synced: str, cents: str) -> str:
    """~30% of synced agreements with an end date prepay 20-50% of their value, in hundreds."""
    return (
        f"CASE WHEN {synced} AND prepay_share IS NOT NULL "
        f"THEN greatest(100, round({cents} / 100.0 * prepay_share / 100) * 100) END"
    )


def _id15(prefix: str, sequence: str, alias: str) -> str:
    return f"sf_id15('{prefix}', {sequence}) AS {alias}"


def _id18(id15: str) -> str:
    """`sf_id` in a second projection: `sf_checksum` repeats its argument 15 times, so handing it
    a column instead of the `sf_id15` expression keeps statements cheap to plan."""
    return f"{id15} || sf_checksum({id15})"
