"""`inferops report --format focus` against real Prometheus, checked by a validator written from FOCUS 1.2.

The validator implements the column rules of the FOCUS 1.2 specification
(FinOps-Open-Cost-and-Usage-Spec/FOCUS_Spec, specification/columns/*.md and
attributes/*.md) that apply to a usage-only dataset: mandatory columns
present; custom columns prefixed ``x_``; DateTimeFormat (ISO 8601 extended,
UTC, ``YYYY-MM-DDTHH:mm:ssZ``); NumericFormat for Decimal columns; the
nullability rules of each column; allowed values of ChargeCategory,
ChargeClass, ChargeFrequency, ServiceCategory/ServiceSubcategory;
BillingCurrency an ISO 4217 code; charge period inside its billing period and
start < end; Tags in KeyValueFormat (a JSON object, unique keys, scalar
values) with provider-defined keys carrying the provider's prefix.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re

import pytest

from test_report_period import history
from test_report_prom import start_prometheus

pytestmark = pytest.mark.e2e

MANDATORY = {
    "BilledCost", "BillingAccountId", "BillingAccountName", "BillingCurrency", "BillingPeriodEnd",
    "BillingPeriodStart", "ChargeCategory", "ChargeClass", "ChargeDescription", "ChargePeriodEnd",
    "ChargePeriodStart", "ContractedCost", "EffectiveCost", "InvoiceIssuerName", "ListCost", "PricingQuantity",
    "PricingUnit", "ProviderName", "PublisherName", "ServiceCategory", "ServiceName",
}
KNOWN_FOCUS = MANDATORY | {
    "AvailabilityZone", "BillingAccountType", "CapacityReservationId", "CapacityReservationStatus",
    "ChargeFrequency", "CommitmentDiscountCategory", "CommitmentDiscountId", "CommitmentDiscountName",
    "CommitmentDiscountQuantity", "CommitmentDiscountStatus", "CommitmentDiscountType", "CommitmentDiscountUnit",
    "ConsumedQuantity", "ConsumedUnit", "ContractedUnitPrice", "InvoiceId", "ListUnitPrice", "PricingCategory",
    "PricingCurrency", "PricingCurrencyContractedUnitPrice", "PricingCurrencyEffectiveCost",
    "PricingCurrencyListUnitPrice", "RegionId", "RegionName", "ResourceId", "ResourceName", "ResourceType",
    "ServiceSubcategory", "SkuId", "SkuMeter", "SkuPriceDetails", "SkuPriceId", "SubAccountId", "SubAccountName",
    "SubAccountType", "Tags",
}
DECIMAL = {"BilledCost", "ContractedCost", "EffectiveCost", "ListCost", "PricingQuantity", "ConsumedQuantity"}
DATETIME = {"BillingPeriodStart", "BillingPeriodEnd", "ChargePeriodStart", "ChargePeriodEnd"}
NOT_NULL = {"BilledCost", "BillingAccountId", "BillingCurrency", "BillingPeriodEnd", "BillingPeriodStart",
            "ChargeCategory", "ChargePeriodEnd", "ChargePeriodStart", "ContractedCost", "EffectiveCost",
            "InvoiceIssuerName", "ListCost", "ProviderName", "PublisherName", "ServiceCategory", "ServiceName",
            "ChargeDescription"}
CHARGE_CATEGORIES = {"Usage", "Purchase", "Tax", "Credit", "Adjustment"}
CHARGE_FREQUENCIES = {"One-Time", "Recurring", "Usage-Based"}
SERVICE_CATEGORIES = {
    "AI and Machine Learning", "Analytics", "Business Applications", "Compute", "Databases", "Developer Tools",
    "Multicloud", "Identity", "Integration", "Internet of Things", "Management and Governance", "Media",
    "Migration", "Mobile", "Networking", "Security", "Storage", "Web", "Other",
}
AI_SUBCATEGORIES = {"AI Platforms", "Bots", "Generative AI", "Machine Learning", "Natural Language Processing",
                    "Other (AI and Machine Learning)"}
ISO_4217 = {"USD", "EUR", "GBP", "JPY", "CHF", "CAD", "AUD", "CNY", "INR", "BRL", "SEK", "NOK", "DKK", "KRW"}
NUMERIC = re.compile(r"^-?\d+(\.\d+)?([eE][-+]?\d+)?$")
DATETIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
PROVIDER_TAG_PREFIX = "inferops/"
USER_TAG_KEYS = {"team", "project", "feature", "environment"}


def _dt(value: str) -> dt.datetime:
    return dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)


def _unique_pairs(pairs):
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        raise ValueError(f"duplicate tag keys {keys}")
    return dict(pairs)


def validate_focus(text: str) -> list[str]:
    """Every violation of the FOCUS 1.2 column rules found in a CSV dataset (empty cell = null)."""
    problems: list[str] = []
    reader = csv.DictReader(io.StringIO(text))
    columns = reader.fieldnames or []
    for col in sorted(MANDATORY - set(columns)):
        problems.append(f"mandatory column {col} missing")
    if len(columns) != len(set(columns)):
        problems.append("duplicate column names")
    for col in columns:
        if col not in KNOWN_FOCUS and not col.startswith("x_"):
            problems.append(f"custom column {col} lacks the x_ prefix")
        if col in KNOWN_FOCUS and not re.fullmatch(r"[A-Z][A-Za-z0-9]*", col):
            problems.append(f"column id {col} is not PascalCase alphanumeric")
    for n, row in enumerate(reader, start=2):
        def bad(msg: str) -> None:
            problems.append(f"line {n}: {msg}")

        null = {c for c in columns if row.get(c, "") == ""}
        for col in NOT_NULL & set(columns):
            if col in null:
                bad(f"{col} must not be null")
        for col in DECIMAL & set(columns):
            if col not in null and not NUMERIC.match(row[col]):
                bad(f"{col} {row[col]!r} is not a decimal in NumericFormat")
        for col in DATETIME & set(columns):
            if col not in null and not DATETIME_RE.match(row[col]):
                bad(f"{col} {row[col]!r} is not YYYY-MM-DDTHH:mm:ssZ")
        if all(c in columns and c not in null and DATETIME_RE.match(row[c]) for c in DATETIME):
            cs, ce, bs, be = (_dt(row[c]) for c in ("ChargePeriodStart", "ChargePeriodEnd", "BillingPeriodStart",
                                                     "BillingPeriodEnd"))
            if not cs < ce:
                bad("ChargePeriodStart must be before ChargePeriodEnd")
            if not bs < be:
                bad("BillingPeriodStart must be before BillingPeriodEnd")
            if not (bs <= cs and ce <= be):
                bad("charge period outside its billing period")
        if row.get("BillingCurrency") and row["BillingCurrency"] not in ISO_4217:
            bad(f"BillingCurrency {row['BillingCurrency']!r} is not an ISO 4217 code")
        cat = row.get("ChargeCategory", "")
        if cat and cat not in CHARGE_CATEGORIES:
            bad(f"ChargeCategory {cat!r} not allowed")
        cls = row.get("ChargeClass", "")
        if cls not in ("", "Correction"):
            bad(f"ChargeClass {cls!r} must be null or Correction")
        correction = cls == "Correction"
        if cat in ("Usage", "Purchase") and not correction:
            if "PricingQuantity" in null:
                bad("PricingQuantity must not be null for Usage/Purchase")
        if cat == "Tax" and "PricingQuantity" not in null:
            bad("PricingQuantity must be null for Tax")
        if ("PricingQuantity" in null) != ("PricingUnit" in null):
            bad("PricingUnit must be null exactly when PricingQuantity is")
        if "ConsumedQuantity" in columns:
            if cat == "Usage" and not correction and "ConsumedQuantity" in null:
                bad("ConsumedQuantity must not be null for Usage")
            if cat != "Usage" and "ConsumedQuantity" not in null:
                bad("ConsumedQuantity must be null unless ChargeCategory is Usage")
            if ("ConsumedQuantity" in null) != ("ConsumedUnit" in null):
                bad("ConsumedUnit must be null exactly when ConsumedQuantity is")
        freq = row.get("ChargeFrequency", "")
        if freq and freq not in CHARGE_FREQUENCIES:
            bad(f"ChargeFrequency {freq!r} not allowed")
        if cat == "Purchase" and freq == "Usage-Based":
            bad("ChargeFrequency must not be Usage-Based for Purchase")
        svc = row.get("ServiceCategory", "")
        if svc and svc not in SERVICE_CATEGORIES:
            bad(f"ServiceCategory {svc!r} not allowed")
        sub = row.get("ServiceSubcategory", "")
        if sub and svc == "AI and Machine Learning" and sub not in AI_SUBCATEGORIES:
            bad(f"ServiceSubcategory {sub!r} not a subcategory of {svc!r}")
        if row.get("Tags"):
            try:
                tags = json.loads(row["Tags"], object_pairs_hook=lambda p: _unique_pairs(p))
            except ValueError as exc:
                bad(f"Tags not a JSON object with unique keys: {exc}")
                continue
            if not isinstance(tags, dict):
                bad("Tags must be a JSON object")
                continue
            for k, v in tags.items():
                if isinstance(v, (dict, list)):
                    bad(f"Tags value of {k!r} must be a number, string, boolean or null")
                if not k.startswith(PROVIDER_TAG_PREFIX) and k not in USER_TAG_KEYS:
                    bad(f"provider-defined tag {k!r} lacks the {PROVIDER_TAG_PREFIX} prefix")
    return problems


@pytest.fixture(scope="module")
def prom(tmp_path_factory):
    server = start_prometheus(tmp_path_factory, "focus", history())
    yield server
    server.stop()


def focus(run_cli, prom, *args):
    status, out, err = run_cli("report", "--prometheus", prom.url, "--format", "focus", *args)
    assert status == 0, err
    return out, err, list(csv.DictReader(io.StringIO(out)))


def test_focus_month_export_is_valid_and_adds_up(run_cli, prom):
    out, err, rows = focus(run_cli, prom, "--period", "2026-10", "--by", "team,project,feature")
    assert validate_focus(out) == []
    # Priced spend in the file equals the report's hand-worked month total; unpriced usage is left out.
    assert sum(float(r["BilledCost"]) for r in rows) == pytest.approx(371.75 + 744.0 + 74.0, abs=1e-6)
    assert all(r["x_Model"] != "my-custom-model" for r in rows)
    assert "25 unpriced requests" in err and "7,500 tokens" in err
    day = [r for r in rows if r["ChargePeriodStart"] == "2026-10-15T00:00:00Z" and r["x_Model"] == "gpt-4o"]
    assert len(day) == 1
    r = day[0]
    # Oct 15: input 11 x 0.5 + 0.25 (reset) + 12 x 0.5 = 11.75, output 24 x 1; tokens 24 x 1000 + 24 x 100.
    assert float(r["BilledCost"]) == pytest.approx(35.75)
    assert r["EffectiveCost"] == r["ListCost"] == r["ContractedCost"] == r["BilledCost"]
    assert r["ChargePeriodEnd"] == "2026-10-16T00:00:00Z"
    assert (r["BillingPeriodStart"], r["BillingPeriodEnd"]) == ("2026-10-01T00:00:00Z", "2026-11-01T00:00:00Z")
    assert r["ConsumedQuantity"] == r["PricingQuantity"] == "26400" and r["ConsumedUnit"] == "Tokens"
    assert (r["x_InputTokens"], r["x_OutputTokens"]) == ("24000", "2400")
    assert r["ServiceCategory"] == "AI and Machine Learning" and r["ServiceSubcategory"] == "Generative AI"
    assert (r["ProviderName"], r["ServiceName"], r["ChargeCategory"], r["ChargeClass"]) == (
        "OpenAI", "OpenAI API", "Usage", "")
    assert json.loads(r["Tags"]) == {"team": "search", "project": "web", "feature": "qa"}
    assert r["x_CostSource"] == "inferops-estimate" and r["BillingCurrency"] == "USD"
    claude = [r for r in rows if r["x_Model"] == "claude-sonnet-4-5"]
    assert {r["PublisherName"] for r in claude} == {"Anthropic"}
    # The unattributed team is not invented as a tag value.
    assert all("team" not in json.loads(r["Tags"]) for r in claude)


def test_focus_clips_charge_period_to_the_window(run_cli, prom, tmp_path):
    target = tmp_path / "focus.csv"
    run_cli("report", "--prometheus", prom.url, "--format", "focus", "--from", "2026-10-15T10:30:00Z",
            "--to", "2026-10-15T13:30:00Z", "--by", "team", "--billing-account", "openai=org-123",
            "--output", str(target))
    text = target.read_text()
    assert validate_focus(text) == []
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [(r["ChargePeriodStart"], r["ChargePeriodEnd"], r["BillingAccountId"]) for r in rows] == [
        ("2026-10-15T10:30:00Z", "2026-10-15T13:30:00Z", "org-123")]
    assert float(rows[0]["BilledCost"]) == pytest.approx(4.25)


def test_validator_catches_violations():
    """The validator is not a rubber stamp: each broken rule is reported."""
    cols = sorted(MANDATORY | {"Tags", "ConsumedQuantity", "ConsumedUnit", "Oops"})
    base = {c: "x" for c in cols}
    base.update({"BilledCost": "1.5", "ContractedCost": "1.5", "EffectiveCost": "1.5", "ListCost": "1,5",
                 "PricingQuantity": "10", "ConsumedQuantity": "", "ConsumedUnit": "", "PricingUnit": "Tokens",
                 "BillingCurrency": "usd", "ChargeCategory": "Usage", "ChargeClass": "Regular",
                 "ServiceCategory": "AI", "ChargePeriodStart": "2026-10-02T00:00:00Z",
                 "ChargePeriodEnd": "2026-10-01T00:00:00Z", "BillingPeriodStart": "2026-10-01T00:00:00Z",
                 "BillingPeriodEnd": "2026-11-01 00:00:00", "Tags": '{"team": "a", "owner": {"x": 1}}'})
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols)
    w.writeheader()
    w.writerow(base)
    problems = "\n".join(validate_focus(buf.getvalue()))
    for expected in ("Oops lacks the x_ prefix", "ListCost '1,5' is not a decimal", "'usd' is not an ISO 4217",
                     "ChargeClass 'Regular'", "ServiceCategory 'AI' not allowed", "ConsumedQuantity must not be null",
                     "BillingPeriodEnd '2026-11-01 00:00:00' is not", "value of 'owner'",
                     "tag 'owner' lacks the inferops/ prefix"):
        assert expected in problems, expected
    assert "mandatory column" not in problems
    assert "mandatory column BilledCost missing" in "\n".join(validate_focus("ListCost\n1\n"))
