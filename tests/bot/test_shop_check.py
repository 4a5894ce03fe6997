"""``deskbot shop check``: clean on the demo shop, and on a deliberately weak shop
(tests/shops/weak/) every weakness is named with the fix; files that do not load are named
with their entry; the bot it asks is a throwaway copy, so the shop's database stays untouched."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from bot.cli.shop_check import Finding, ShopReport, check_shop, render
from bot.cli.shop_probes import CatalogView, short_names
from bot.config import load_settings
from intents.classifier import BuiltinClassifier
from knowledge.shop import load_catalog
from tests.cli_runner import run_deskbot

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "examples/shop"
WEAK = ROOT / "tests/shops/weak"


def shop_environ(shop: Path, tmp_path: Path, name: str = "Test Shop") -> dict[str, str]:
    return {
        "DESKBOT_SHOP__NAME": name,
        "DESKBOT_SHOP__CATALOG": str(shop / "catalog.yml"),
        "DESKBOT_SHOP__FAQ": str(shop / "faq.yml"),
        "DESKBOT_SHOP__ORDERS_CSV": str(shop / "orders.csv"),
        # The shop's real database: the check must not create or touch it.
        "DESKBOT_STORAGE__URL": f"sqlite+aiosqlite:///{tmp_path / 'shop.db'}",
    }


async def run_check(shop: Path, tmp_path: Path, classifier: BuiltinClassifier) -> ShopReport:
    settings = load_settings(ROOT / "config.yaml", environ=shop_environ(shop, tmp_path))
    report = await check_shop(settings, classifier=classifier)
    assert not (tmp_path / "shop.db").exists(), "the check wrote to the shop's database"
    return report


def failing(report: ShopReport, category: str) -> dict[tuple[str, str, str], Finding]:
    return {(f.check, f.subject, f.language): f for f in report.failures if f.category == category}


def deskbot(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_deskbot(env, *args)


@pytest.fixture
def cli_env(tmp_path: Path, trained_model_path: Path) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("DESKBOT_")},
        "DESKBOT_CLASSIFIER__MODEL_PATH": str(trained_model_path),
        "DESKBOT_LOGGING__LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
    }


async def test_demo_shop_report_is_clean(tmp_path: Path, trained_classifier: BuiltinClassifier) -> None:
    report = await run_check(DEMO, tmp_path, trained_classifier)
    assert report.files_ok
    summary = report.summary()
    # Every product in both languages, every FAQ entry, returns for real orders were asked.
    assert summary["names"]["passed"] == 14 * 2
    assert summary["products"]["passed"] + summary["products"]["failed"] > 14 * 2 * 2
    assert summary["faq"]["passed"] + summary["faq"]["failed"] > 22 * 2
    assert summary["returns"]["passed"] + summary["returns"]["failed"] == 3 * 2
    assert report.ok, "\n" + render(report)
    assert report.exit_code == 0


async def test_weak_shop_names_each_weakness_and_its_fix(
    tmp_path: Path, trained_classifier: BuiltinClassifier
) -> None:
    report = await run_check(WEAK, tmp_path, trained_classifier)
    assert report.files_ok and not report.ok and report.exit_code == 1

    names = failing(report, "names")
    # Exactly the catalog's four weaknesses, and nothing about its sound products.
    assert set(names) == {
        ("ambiguous_alias", "DR-CER", "en"),
        ("full_name_only", "BG-80", "en"),
        ("full_name_only", "BG-80", "zh"),
        ("language", "TS-BMB", "zh"),
    }
    shared = names["ambiguous_alias", "DR-CER", "en"]
    assert shared.form == "coffee dripper" and "DR-GLS" in shared.detail
    assert shared.fix is not None and 'make "coffee dripper" more specific' in shared.fix and "DR-GLS" in shared.fix
    coded = names["full_name_only", "BG-80", "en"]
    assert '"BG-80 Mk II"' in coded.detail and coded.fix is not None and "add aliases.en to BG-80" in coded.fix
    assert "add aliases.zh to BG-80" in str(names["full_name_only", "BG-80", "zh"].fix)
    untranslated = names["language", "TS-BMB", "zh"]
    assert untranslated.outcome == "no_form_in_language" and "add aliases.zh to TS-BMB" in str(untranslated.fix)

    # The wholesale answer says nothing of its own (its words are the contact entry's), so a
    # question about it cannot reach it: the report says so and what to change.
    faq = failing(report, "faq")
    wholesale = faq["paraphrase", "wholesale", "en"]
    assert wholesale.message and "contact" in wholesale.detail
    assert wholesale.fix is not None and "answer of wholesale" in wholesale.fix and "phrasing" in wholesale.fix

    text = render(report)
    for finding in names.values():
        assert str(finding.fix) in text
    assert str(wholesale.fix) in text and text.rstrip().endswith("(exit code 1)")


def test_chinese_short_names_are_the_ending_of_the_name() -> None:
    """No spaces to cut at: the last two and three characters, after codes, counts and pack sizes."""
    assert short_names("奥斯陆橡木咖啡桌") == ["啡桌", "咖啡桌"]
    assert short_names("卑尔根亚麻沙发") == ["沙发", "麻沙发"]
    assert short_names("棒球帽") == ["球帽"]
    assert short_names("中筒袜（三双装）") == ["筒袜", "中筒袜"]
    assert short_names("玻尿酸补水面膜10片装") == ["面膜", "水面膜"]
    assert short_names("清透防晒霜SPF50") == ["晒霜", "防晒霜"]
    assert short_names("Summit 30升登山背包") == ["背包", "山背包"]
    assert short_names("BG-80 二代") == [] and short_names("经典纯棉T恤") == []
    # A short name two products end in fits both: the bot must ask which one.
    view = CatalogView(load_catalog(ROOT / "tests/shops/furniture/catalog.yml"), ["en", "zh"])
    assert view.probe("餐桌", "zh").fits == ("OSL-DT6",)
    weak = CatalogView(load_catalog(WEAK / "catalog.yml"), ["en", "zh"])
    assert weak.probe("滤杯", "zh").fits == ("DR-CER", "DR-GLS")


def test_json_report_parses(cli_env: dict[str, str], tmp_path: Path) -> None:
    env = cli_env | shop_environ(WEAK, tmp_path, "Kettle & Leaf")
    done = deskbot(env, "--config", str(ROOT / "config.yaml"), "shop", "check", "--json")
    assert done.returncode == 1, done.stderr
    data = json.loads(done.stdout)
    assert data["shop"] == "Kettle & Leaf" and data["ok"] is False and data["exit_code"] == 1
    assert [f["file"] for f in data["files"]] == ["catalog", "faq", "orders"] and all(f["ok"] for f in data["files"])
    assert set(data["summary"]) == {"names", "products", "faq", "returns"}
    checks = data["checks"]
    assert sum(c["ok"] for c in checks) == sum(s["passed"] for s in data["summary"].values())
    ambiguous = [c for c in checks if c["check"] == "ambiguous_alias"]
    assert [(c["subject"], c["form"], c["ok"]) for c in ambiguous] == [("DR-CER", "coffee dripper", False)]
    asked = [c for c in checks if c["category"] == "products"]
    assert {"How much is the coffee dripper?", "Do you have the Glass Coffee Dripper in stock?"} <= {
        c["message"] for c in asked
    }
    assert not (tmp_path / "shop.db").exists()


def test_a_broken_file_is_named_with_its_entry(cli_env: dict[str, str], tmp_path: Path) -> None:
    shop = tmp_path / "shop"
    shop.mkdir()
    catalog = (WEAK / "catalog.yml").read_text(encoding="utf-8")
    # The second product gets a negative price and a misspelt field.
    catalog = catalog.replace("    price: 28.00\n", "    price: -28.00\n    colors: {en: [white]}\n", 1)
    (shop / "catalog.yml").write_text(catalog, encoding="utf-8")
    (shop / "faq.yml").write_text((WEAK / "faq.yml").read_text(encoding="utf-8"), encoding="utf-8")
    orders = (WEAK / "orders.csv").read_text(encoding="utf-8").replace(",3,6.50,", ",three,6.50,")
    (shop / "orders.csv").write_text(orders, encoding="utf-8")
    # A config of the shop's own, given after the subcommand; its paths are relative to it.
    config = tmp_path / "deskbot.yaml"
    config.write_text(
        "shop:\n  catalog: shop/catalog.yml\n  faq: shop/faq.yml\n  orders_csv: shop/orders.csv\n", encoding="utf-8"
    )

    done = deskbot(cli_env, "shop", "check", "--config", str(config))
    assert done.returncode == 2, done.stderr
    out = done.stdout
    assert f"FAIL catalog: {shop / 'catalog.yml'}" in out
    assert "products[1] (sku DR-CER): price:" in out and "products[1] (sku DR-CER): colors:" in out
    assert "ok   faq:" in out
    assert f"FAIL orders: {shop / 'orders.csv'}, line 6, column quantity: 'three' is not a whole number" in out
    assert "exit code 2" in out

    data = json.loads(deskbot(cli_env, "shop", "check", "--json", "--config", str(config)).stdout)
    files = {f["file"]: f for f in data["files"]}
    assert files["catalog"]["entry"] == "products[1] (sku DR-CER)" and files["orders"]["entry"] == "line 6, column quantity"
    assert data["exit_code"] == 2 and data["checks"] == []
