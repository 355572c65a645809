"""The CPQ org's deals: contracts sold, amended and renewed the way Salesforce CPQ records them.

What CPQ writes, from Salesforce Help (the CPQ field references, "Amend Your Contracts", the
legacy data upload pages) and the package's field definitions:

- A sale is an Opportunity with a primary `SBQQ__Quote__c` (type Quote, status Accepted) whose
  `SBQQ__QuoteLine__c` records carry the products. Contracting it makes a Contract (with
  `SBQQ__Quote__c` and `SBQQ__Opportunity__c`) and one `SBQQ__Subscription__c` per line.
- Line dates are usually blank: a line takes its quote's dates through the effective-date
  formulas. `SBQQ__NetPrice__c` is the net unit price for the line's prorated term, and
  `SBQQ__ProrateMultiplier__c` is that term over the product's own. Here the products are priced
  per month, so the multiplier is the term in months.
- An amendment is a new Opportunity (`SBQQ__AmendedContract__c`) with a quote of type Amendment
  on the master contract. The quote starts on the amendment date and ends with the contract (it is
  co-terminated). Each line carries the new total quantity, the old one in `SBQQ__PriorQuantity__c`
  and the subscription it changes in `SBQQ__UpgradedSubscription__c`. CPQ keeps the price of an
  amended line: its net unit price covers the remaining term.
- Contracting the amendment leaves the original subscription alone. It adds one subscription on
  the same contract that carries the change (`SBQQ__EffectiveQuantity__c`, the new total less the
  prior one) from the amendment date, with `SBQQ__RevisedSubscription__c` on the original.
  Secondary sources agree on this; Help implies it and never states it in one sentence.
- A renewal is an Opportunity with `SBQQ__RenewedContract__c` and a quote of type Renewal, starting
  the day after the contract ends. Its lines name the subscriptions they renew
  (`SBQQ__RenewedSubscription__c`) at the quantity reached. Contracting it makes a new Contract and
  new subscriptions, here with a 3% uplift on the unit price.

Each customer account has one chain (a sale, perhaps an amendment, perhaps a renewal). m3ter
allows one active account plan per account and product, so overlapping chains of one account
would supersede each other. Three in ten sales also have a draft alternative quote that is never
primary and must never bill. Amendments change quantities and never cancel a product: a quantity
cut to 0 is what CPQ records for a removed product, and the example mappings would still price
its usage.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline.sandbox.catalog import CATALOG

if TYPE_CHECKING:
    from pipeline.sandbox.salesforce.generator import _Generator

# Products a CPQ line may sell: usage products whose aggregation is neither segmented nor compound,
# so that one pricing per line bills them.
CPQ_PRODUCTS: tuple[int, ...] = tuple(
    i for i, p in enumerate(CATALOG) if p.aggregation and not p.segmented_by and not p.compound
)
RENEWAL_UPLIFT = 1.03
_AMENDED_SHARE = 0.6
_RENEWED_SHARE = 0.4
_DRAFT_SHARE = 0.3
_CPQ_TABLES = ("_q_chain", "_q_quote", "_q_line", "_q_contract", "_q_sub")
_QUOTE_KINDS = "['original', 'draft', 'amendment', 'renewal']"


def _id(prefix: str, seq: str) -> str:
    """An 18-character Id of `prefix` and the sequence expression `seq`."""
    return f"(sf_id15('{prefix}', {seq}) || sf_checksum(sf_id15('{prefix}', {seq})))"


def generate_cpq_deals(g: _Generator) -> None:
    """Fill the CPQ objects, and the Opportunities and Contracts they hang from."""
    try:
        _chains(g)
        _quotes(g)
        _lines(g)
        _contracts(g)
        _subscriptions(g)
        _fill(g)
    finally:
        for table in _CPQ_TABLES:
            g.con.execute(f"DROP TABLE IF EXISTS temp.main.{table}")


def _chains(g: _Generator) -> None:
    """One chain per customer account: when it was sold, its term, and what followed."""
    c = g.clock
    latest = c.end_ms - 6 * 3_600_000
    products = len(CPQ_PRODUCTS)
    g.sql(f"""
        CREATE OR REPLACE TEMP TABLE _q_chain AS
        WITH drawn AS (
            SELECT a.i, a.id AS account_id, a.name AS account_name, a.currency, a.owner_idx,
                least({latest}, a.created_ms + 3600000 + CAST(floor(
                    greatest(0, {latest} - a.created_ms - 3600000) * 0.5
                    * _g_u(a.i, 'cpq:sold')) AS BIGINT)) AS sold_ms,
                [12, 24][1 + _g_pick(a.i, 'cpq:term', 2)] AS term,
                _g_pick(a.i, 'cpq:backdate', 200) AS backdate,
                1 + _g_pick(a.i, 'cpq:lines', {products}) AS n_lines,
                _g_pick(a.i, 'cpq:offset', {products}) AS product_offset,
                _g_u(a.i, 'cpq:amended') < {_AMENDED_SHARE} AS amended,
                _g_u(a.i, 'cpq:renewed') < {_RENEWED_SHARE} AS renewed,
                _g_u(a.i, 'cpq:draft') < {_DRAFT_SHARE} AS drafted
            FROM _g_customer cu JOIN _g_account a ON a.i = cu.i
        ),
        dated AS (
            SELECT *, CAST(epoch_ms(sold_ms) AS DATE) - CAST(backdate AS INTEGER) AS start_date,
                1 + _g_pick(i, 'cpq:amend_month', term - 1) AS amend_months,
                sold_ms + CAST(floor(({c.end_ms} - sold_ms) * (0.2 + 0.3 * _g_u(i, 'cpq:amend_t')))
                    AS BIGINT) AS amended_ms
            FROM drawn
        )
        SELECT *,
            CAST(start_date + to_months(term) - INTERVAL 1 DAY AS DATE) AS end_date,
            CAST(start_date + to_months(amend_months) AS DATE) AS amend_date,
            amended_ms + CAST(floor(({c.end_ms} - amended_ms)
                * (0.2 + 0.5 * _g_u(i, 'cpq:renew_t'))) AS BIGINT) AS renewed_ms
        FROM dated""")


def _quotes(g: _Generator) -> None:
    """Every quote of every chain, with its opportunity: the sale, its draft alternative, the
    amendment and the renewal."""
    g.sql(f"""
        CREATE OR REPLACE TEMP TABLE _q_quote AS
        WITH kinds AS (
            SELECT c.*, k.kind FROM _q_chain c, (SELECT unnest({_QUOTE_KINDS}) AS kind) k
            WHERE k.kind = 'original' OR k.kind = 'draft' AND c.drafted
               OR k.kind = 'amendment' AND c.amended OR k.kind = 'renewal' AND c.renewed
        ),
        dated AS (
            SELECT *,
                CASE kind WHEN 'original' THEN sold_ms WHEN 'draft' THEN sold_ms - 1800000
                          WHEN 'amendment' THEN amended_ms ELSE renewed_ms END AS created_ms,
                CASE kind WHEN 'amendment' THEN amend_date
                          WHEN 'renewal' THEN CAST(end_date + INTERVAL 1 DAY AS DATE)
                          ELSE start_date END AS q_start,
                CASE kind WHEN 'renewal'
                          THEN CAST(start_date + to_months(term + 12) - INTERVAL 1 DAY AS DATE)
                          ELSE end_date END AS q_end,
                CASE kind WHEN 'amendment' THEN term - amend_months
                          WHEN 'renewal' THEN 12 ELSE term END AS q_term
            FROM kinds
        ),
        sequenced AS (
            SELECT *, row_number() OVER (ORDER BY created_ms, i, kind) AS seq,
                dense_rank() OVER (ORDER BY CASE WHEN kind = 'draft' THEN sold_ms
                                                 ELSE created_ms END, i,
                                            CASE WHEN kind = 'draft' THEN 'original'
                                                 ELSE kind END) AS opp_seq
            FROM dated
        )
        SELECT *, {_id("a0Q", "seq")} AS quote_id, {_id("006", "opp_seq")} AS opp_id
        FROM sequenced""")


def _lines(g: _Generator) -> None:
    """The lines of every quote: one per product of the chain, priced per month."""
    products = "[" + ", ".join(str(i) for i in CPQ_PRODUCTS) + "]"
    g.sql(f"""
        CREATE OR REPLACE TEMP TABLE _q_line AS
        WITH exploded AS (
            SELECT q.*, unnest(range(q.n_lines)) AS line_no FROM _q_quote q
        ),
        drawn AS (
            SELECT e.*, e.i * 8 + e.line_no AS line_key, p.id AS product_id,
                pb.unit_price AS list_price,
                p.qty_lo * pow(p.qty_hi / p.qty_lo, _g_u(e.i * 8 + e.line_no, 'cpq:qty'))
                    AS raw_qty,
                0.5 + 1.5 * _g_u(e.i * 8 + e.line_no, 'cpq:change') AS change
            FROM exploded e
            JOIN _g_product p
                ON p.idx = {products}[1 + (e.product_offset + e.line_no) % {len(CPQ_PRODUCTS)}]
            JOIN _g_pbe pb ON pb.product_idx = p.idx AND pb.currency = e.currency
        ),
        quantities AS (
            SELECT *,
                greatest(1, round(raw_qty, 1 - CAST(floor(log10(raw_qty)) AS INTEGER))) AS sold,
                round(list_price * (1 - 0.05 * _g_pick(line_key, 'cpq:discount', 4)), 6)
                    AS unit_price
            FROM drawn
        ),
        amended AS (
            SELECT *,
                CASE WHEN NOT amended THEN sold
                     WHEN greatest(1, round(sold * change)) = sold THEN sold + 1
                     ELSE greatest(1, round(sold * change)) END AS reached
            FROM quantities
        )
        SELECT *,
            CASE kind WHEN 'original' THEN sold WHEN 'draft' THEN sold * 2 ELSE reached END
                AS quantity,
            CASE kind WHEN 'amendment' THEN sold END AS prior_quantity,
            CASE kind WHEN 'renewal' THEN round(unit_price * {RENEWAL_UPLIFT}, 6)
                      ELSE unit_price END AS monthly_price,
            row_number() OVER (ORDER BY created_ms, i, kind, line_no) AS line_seq
        FROM amended""")


def _contracts(g: _Generator) -> None:
    """The contract of each sale, and of each renewal, an hour after its quote."""
    g.sql(f"""
        CREATE OR REPLACE TEMP TABLE _q_contract AS
        SELECT *, {_id("800", "contract_seq")} AS contract_id
        FROM (
            SELECT q.*, q.created_ms + 3600000 AS contracted_ms,
                row_number() OVER (ORDER BY q.created_ms, q.i, q.kind) AS contract_seq
            FROM _q_quote q WHERE q.kind IN ('original', 'renewal'))""")


def _subscriptions(g: _Generator) -> None:
    """What contracting made: a subscription per line of a sale or renewal, and one per amended
    line carrying the change on the original's contract."""
    g.sql(f"""
        CREATE OR REPLACE TEMP TABLE _q_sub AS
        WITH made AS (
            SELECT l.*, c.contract_id, c.contracted_ms
            FROM _q_line l JOIN _q_contract c ON c.i = l.i AND c.kind = l.kind
            UNION ALL BY NAME
            SELECT l.*, c.contract_id, l.created_ms + 3600000 AS contracted_ms
            FROM _q_line l JOIN _q_contract c ON c.i = l.i AND c.kind = 'original'
            WHERE l.kind = 'amendment'
        ),
        sequenced AS (
            SELECT *, row_number() OVER (ORDER BY contracted_ms, i, kind, line_no) AS sub_seq
            FROM made
        )
        SELECT s.*, {_id("a0S", "s.sub_seq")} AS sub_id,
            CASE WHEN s.kind <> 'original' THEN {_id("a0S", "o.sub_seq")} END AS origin_id
        FROM sequenced s
        LEFT JOIN sequenced o ON o.i = s.i AND o.line_no = s.line_no AND o.kind = 'original'""")


def _fill(g: _Generator) -> None:
    """One INSERT per object, through the generator's `fill` (audit fields, recent edits)."""
    live = "false AS deleted, NULL::BIGINT AS del_ms"
    headers = f"""
        SELECT q.*, oc.contract_id AS original_contract, t.net_amount, {live}
        FROM _q_quote q
        LEFT JOIN _q_contract oc ON oc.i = q.i AND oc.kind = 'original'
        LEFT JOIN (SELECT quote_id, sum((quantity - coalesce(prior_quantity, 0))
                                        * monthly_price * q_term) AS net_amount
                   FROM _q_line GROUP BY quote_id) t ON t.quote_id = q.quote_id"""
    g.fill(
        "Opportunity",
        f"""
        SELECT * EXCLUDE (created_ms, seq), created_ms - 3600000 AS created_ms,
            opp_seq AS seq, i AS hkey
        FROM ({headers}) WHERE kind <> 'draft'""",
        """
        opp_id AS "Id",
        account_name || ' - ' || CASE kind WHEN 'original' THEN 'New Business'
            WHEN 'amendment' THEN 'Amendment' ELSE 'Renewal' END || ' ' || year(q_start)
            AS "Name",
        account_id AS "AccountId", 'Closed Won' AS "StageName",
        CAST(epoch_ms(created_ms) AS DATE) AS "CloseDate", net_amount AS "Amount",
        100 AS "Probability",
        CASE kind WHEN 'original' THEN 'New Business' WHEN 'amendment' THEN 'Existing Business'
                  ELSE 'Renewal' END AS "Type",
        true AS "IsClosed", true AS "IsWon", 'Closed' AS "ForecastCategoryName",
        false AS "HasOpportunityLineItem", currency AS "CurrencyIsoCode",
        false AS "Sync_To_M3ter__c", quote_id AS "SBQQ__PrimaryQuote__c",
        CASE WHEN kind = 'amendment' THEN original_contract END AS "SBQQ__AmendedContract__c",
        CASE WHEN kind = 'renewal' THEN original_contract END AS "SBQQ__RenewedContract__c",
        true AS "SBQQ__Contracted__c", false AS "SBQQ__Ordered__c" """,
        {},
        touched="created_ms + 3600000",
    )
    g.fill(
        "SBQQ__Quote__c",
        f"SELECT *, seq AS hkey FROM ({headers})",
        """
        quote_id AS "Id", 'Q-' || lpad(seq::VARCHAR, 5, '0') AS "Name",
        account_id AS "SBQQ__Account__c", opp_id AS "SBQQ__Opportunity2__c",
        kind <> 'draft' AS "SBQQ__Primary__c",
        CASE kind WHEN 'amendment' THEN 'Amendment' WHEN 'renewal' THEN 'Renewal'
                  ELSE 'Quote' END AS "SBQQ__Type__c",
        CASE kind WHEN 'draft' THEN 'Draft' ELSE 'Accepted' END AS "SBQQ__Status__c",
        q_start AS "SBQQ__StartDate__c", q_end AS "SBQQ__EndDate__c",
        q_term AS "SBQQ__SubscriptionTerm__c",
        CASE WHEN kind = 'amendment' THEN original_contract END AS "SBQQ__MasterContract__c",
        'Monthly' AS "SBQQ__BillingFrequency__c", net_amount AS "SBQQ__NetAmount__c",
        n_lines AS "SBQQ__LineItemCount__c", false AS "SBQQ__Ordered__c",
        currency AS "CurrencyIsoCode" """,
        {},
    )
    g.fill(
        "SBQQ__QuoteLine__c",
        f"""
        SELECT l.* EXCLUDE (seq, created_ms), l.line_seq AS seq, l.line_seq AS hkey,
            l.created_ms + 60000 AS created_ms, o.sub_id AS origin_sub, {live}
        FROM _q_line l
        LEFT JOIN _q_sub o ON o.i = l.i AND o.line_no = l.line_no AND o.kind = 'original'""",
        """
        'QL-' || lpad(seq::VARCHAR, 7, '0') AS "Name", quote_id AS "SBQQ__Quote__c",
        product_id AS "SBQQ__Product__c", line_no + 1 AS "SBQQ__Number__c",
        quantity AS "SBQQ__Quantity__c", prior_quantity AS "SBQQ__PriorQuantity__c",
        quantity - coalesce(prior_quantity, 0) AS "SBQQ__EffectiveQuantity__c",
        list_price * q_term AS "SBQQ__ListPrice__c",
        monthly_price * q_term AS "SBQQ__NetPrice__c",
        monthly_price * q_term * (quantity - coalesce(prior_quantity, 0)) AS "SBQQ__NetTotal__c",
        q_term AS "SBQQ__ProrateMultiplier__c",
        q_start AS "SBQQ__EffectiveStartDate__c", q_end AS "SBQQ__EffectiveEndDate__c",
        q_term AS "SBQQ__SubscriptionTerm__c", 'Fixed Price' AS "SBQQ__SubscriptionPricing__c",
        'Recurring' AS "SBQQ__ChargeType__c", 'Monthly' AS "SBQQ__BillingFrequency__c",
        CASE WHEN kind = 'amendment' THEN origin_sub END AS "SBQQ__UpgradedSubscription__c",
        CASE WHEN kind = 'renewal' THEN origin_sub END AS "SBQQ__RenewedSubscription__c",
        currency AS "CurrencyIsoCode",
        monthly_price AS "M3ter_Monthly_Unit_Price__c",
        quantity * monthly_price AS "M3ter_Monthly_Amount__c" """,
        {"Id": ("a0L", "seq")},
        owned=False,
    )
    g.fill(
        "Contract",
        f"""
        SELECT c.* EXCLUDE (seq, created_ms), c.contract_seq AS seq, c.contract_seq AS hkey,
            c.contracted_ms AS created_ms, rq.opp_id AS renewal_opp, {live}
        FROM _q_contract c LEFT JOIN _q_quote rq ON rq.i = c.i AND rq.kind = 'renewal'
            AND c.kind = 'original'""",
        """
        contract_id AS "Id", account_id AS "AccountId", q_start AS "StartDate",
        q_end AS "EndDate", q_term AS "ContractTerm", 'Activated' AS "Status",
        'Activated' AS "StatusCode", lpad(seq::VARCHAR, 8, '0') AS "ContractNumber",
        epoch_ms(created_ms) AS "ActivatedDate",
        CAST(epoch_ms(created_ms) AS DATE) AS "CustomerSignedDate",
        CAST(epoch_ms(created_ms) AS DATE) AS "CompanySignedDate",
        currency AS "CurrencyIsoCode", 'Monthly' AS "Billing_Frequency__c",
        quote_id AS "SBQQ__Quote__c", opp_id AS "SBQQ__Opportunity__c",
        renewal_opp AS "SBQQ__RenewalOpportunity__c",
        renewal_opp IS NOT NULL AS "SBQQ__RenewalForecast__c",
        renewal_opp IS NOT NULL AS "SBQQ__RenewalQuoted__c", 12 AS "SBQQ__RenewalTerm__c" """,
        {},
    )
    g.fill(
        "SBQQ__Subscription__c",
        f"""
        SELECT s.* EXCLUDE (seq, created_ms), s.sub_seq AS seq, s.sub_seq AS hkey,
            s.contracted_ms + 60000 AS created_ms, {live}
        FROM _q_sub s""",
        """
        sub_id AS "Id", 'SUB-' || lpad(seq::VARCHAR, 7, '0') AS "Name",
        account_id AS "SBQQ__Account__c", contract_id AS "SBQQ__Contract__c",
        product_id AS "SBQQ__Product__c", line_no + 1 AS "SBQQ__Number__c",
        CASE WHEN kind = 'amendment' THEN quantity - prior_quantity ELSE quantity END
            AS "SBQQ__Quantity__c",
        CASE WHEN kind = 'amendment' THEN quantity - prior_quantity ELSE quantity END
            AS "SBQQ__RenewalQuantity__c",
        list_price * q_term AS "SBQQ__ListPrice__c",
        monthly_price * q_term AS "SBQQ__NetPrice__c", q_term AS "SBQQ__ProrateMultiplier__c",
        q_start AS "SBQQ__SubscriptionStartDate__c", q_end AS "SBQQ__SubscriptionEndDate__c",
        q_start AS "SBQQ__StartDate__c", q_end AS "SBQQ__EndDate__c",
        CASE WHEN kind = 'amendment' THEN origin_id END AS "SBQQ__RevisedSubscription__c",
        'Recurring' AS "SBQQ__ChargeType__c", 'Monthly' AS "SBQQ__BillingFrequency__c",
        currency AS "CurrencyIsoCode" """,
        {"SBQQ__QuoteLine__c": ("a0L", "line_seq")},
    )
