"""The world's data: Factbook places, the field registry, pages, counterfactual worlds."""

from __future__ import annotations

import pytest
from world_support import real_factbook

from parlswarm.world.counterfactual import counterfactual
from parlswarm.world.factbook import EXCLUDED_CODES, REGION_NAMES, lookup
from parlswarm.world.fields import FIELDS, field_by_label, field_by_noun, get_field
from parlswarm.world.pages import PAGE_CHARS, build_docs, paginate, read_entry, region_members, section_doc_id


def test_factbook_places_regions_and_names() -> None:
    fb = real_factbook()
    assert len(fb) == 254  # 256 files less the World and the European Union
    assert not EXCLUDED_CODES & set(fb.entities)
    assert set(fb.regions) == set(REGION_NAMES)
    assert sum(len(r.members) for r in fb.regions.values()) == len(fb)
    names = [e.name for e in fb]
    assert len(set(names)) == len(names)
    assert fb.entities["iv"].name == "Côte d'Ivoire"  # entity decoded in names, kept in pages
    assert fb.entities["fr"].region == "europe" and "fr" in fb.regions["europe"].members
    assert fb.region_by_name("East and Southeast Asia") is fb.regions["east-n-southeast-asia"]
    # Keys with stray spaces ("total ") still resolve.
    assert lookup(fb.entities["fr"].data, ("Geography", "Area", "total")) == "643,801 sq km ; 551,500 sq km (metropolitan France)"


def test_registry_has_twenty_plus_distinct_fields_with_coverage() -> None:
    assert len(FIELDS) >= 20
    for attr in ("id", "label", "noun"):
        values = [getattr(f, attr) for f in FIELDS]
        assert len(set(values)) == len(values), attr
    assert {f.type for f in FIELDS} == {"string", "number", "date"}
    fb = real_factbook()
    for f in FIELDS:
        have = sum(f.parse(e.value(f.path)) is not None for e in fb)
        assert have >= 150, f"{f.id}: only {have} places"
        assert field_by_label(f.label) is f and field_by_noun(f.noun) is f
    with pytest.raises(ValueError, match="unknown field 'favourite_food'; known fields: capital"):
        get_field("favourite_food")


@pytest.mark.parametrize(
    ("field_id", "raw", "value"),
    [
        ("population", "68,512,806 (2025 est.)", 68512806.0),
        ("area", "1.284 million sq km", 1284000.0),
        ("gdp_per_capita", "-$30.334 billion (2023 est.)", -30334000000.0),
        ("coastline", "0 km (landlocked)", 0.0),
        ("death_rate", "NA", None),
        ("capital", "Pretoria (administrative capital); Cape Town (legislative capital)", "Pretoria"),
        ("capital", "Santiago; note - Valparaiso is the seat of the national legislature", "Santiago"),
        ("long_name", "none", None),
        ("long_name", "R&eacute;publique fran&ccedil;aise", "République française"),
        ("highest_point", "Mont Blanc 4,810", "Mont Blanc"),
        ("highest_point", "Gora El'brus (highest point in Europe) 5,642 m", "Gora El'brus"),
        ("highest_point", "200 m NNW of lighthouse 85 m", None),
        ("internet_code", "metropolitan France - .fr; French Guiana - .gf", ".fr"),
        ("currency_code", "euros (EUR) per US dollar -", "EUR"),
        ("currency_code", "baht per US dollar -", None),
        ("independence", "4 July 1776 (declared independence from Great Britain)", "1776-07-04"),
        ("independence", "1291 (founding of the Swiss Confederation)", None),
        ("government_type", "parliamentary democracy; note - constitutional changes adopted", "parliamentary democracy"),
    ],
)
def test_field_normalisation_reads_the_real_mess(field_id: str, raw: str, value: object) -> None:
    assert get_field(field_id).parse(raw) == value


def test_eval_pipeline_per_type() -> None:
    assert get_field("population").eval_pipeline() == {"preprocess": ["extract_number"], "metric": ["number_near"], "criterion": 0.01}
    assert get_field("independence").eval_pipeline()["metric"] == ["date_near"]
    assert get_field("capital").eval_pipeline() == {"preprocess": ["norm_str"], "metric": ["exact_match"]}
    assert get_field("population").cell(68512806.0) == "68512806" and get_field("median_age").cell(42.7) == "42.7"


@pytest.mark.parametrize("seed", [0, 7])
def test_every_field_reads_back_from_its_page(seed: int) -> None:
    """What a reader takes from the rendered pages is exactly what the data says (gold)."""
    world = counterfactual(real_factbook(), seed)
    docs = build_docs(world)
    checked = 0
    for entity in world:
        for f in FIELDS:
            want = f.parse(entity.value(f.path))
            doc = docs.get(section_doc_id(entity.code, f.section))
            got = f.parse(read_entry(doc.text, f.path)) if doc else None
            assert got == want, (seed, entity.code, f.id)
            checked += want is not None
    assert checked > 5000


def test_pages_keep_the_mess_and_paginate_between_lines() -> None:
    docs = build_docs(real_factbook())
    gov = docs["fr/government"]
    assert gov.title == "France — Government"
    assert "R&eacute;publique fran&ccedil;aise" in gov.text  # entities kept
    assert "## Capital\nname: Paris" in gov.text
    pages = gov.pages()
    assert len(pages) >= 2 and "\n".join(pages) == gov.text
    assert all(len(p) <= PAGE_CHARS or "\n" not in p for p in pages)
    assert paginate("aa\nbb\ncc", 6) == ["aa\nbb", "cc"]
    assert paginate("x" * 10 + "\ny", 4) == ["x" * 10, "y"]  # a long line is never cut
    index = docs["region/south-america"]
    members = region_members(index.text)
    assert ("Brazil", "br") in members and len(members) == len(real_factbook().regions["south-america"].members)
    assert "region/europe" in docs["regions"].text


def test_seed_zero_is_the_real_factbook() -> None:
    real = real_factbook()
    assert counterfactual(real, 0) is real


def test_counterfactual_changes_every_field_consistently_and_deterministically() -> None:
    real = real_factbook()
    one, again, two = counterfactual(real, 1), counterfactual(real, 1), counterfactual(real, 2)
    for f in FIELDS:
        pairs = [(f.parse(e.value(f.path)), f.parse(one.entities[e.code].value(f.path))) for e in real]
        present = [(a, b) for a, b in pairs if a is not None]
        assert all(b is not None for a, b in present) and all(b is None for a, b in pairs if a is None), f.id
        if f.type == "number":
            moved = [a != 0 and abs(b - a) >= 0.03 * abs(a) for a, b in present]  # type: ignore[operator]
            nonzero = sum(a != 0 for a, _ in present)
            assert sum(moved) >= 0.9 * nonzero, f.id
        else:
            assert sum(a != b for a, b in present) >= 0.6 * len(present), f.id
        if f.type == "string":  # a permutation: the same values, other places
            assert sorted(map(str, (a for a, _ in present))) == sorted(map(str, (b for _, b in present)))
        assert all(
            one.entities[c].value(f.path) == again.entities[c].value(f.path) for c in real.entities
        ), f"{f.id} not deterministic"
    assert any(one.entities[c].value(get_field("capital").path) != two.entities[c].value(get_field("capital").path) for c in real.entities)
    # The same labelled entry in another section changes with it.
    fr = one.entities["fr"]
    assert fr.value(("Environment", "Urbanization", "urban population")) == fr.value(("People and Society", "Urbanization", "urban population"))
    assert fr.value(("Environment", "Urbanization", "urban population")) != real.entities["fr"].value(("Environment", "Urbanization", "urban population"))
    # Real mess survives the change: the estimate year stays.
    assert one.entities["fr"].value(get_field("population").path).endswith("(2025 est.)")


def test_opened_region_reads_the_call_not_its_text() -> None:
    from parlswarm.world.pages import opened_region, region_doc_id

    assert opened_region("open_page", f'{{"doc_id": "{region_doc_id("Central Asia")}", "page": 2}}') == "Central Asia"
    assert opened_region("open_page", '{"doc_id": "fr/geography"}') is None
    assert opened_region("search", '{"query": "region/Europe"}') is None  # a search naming it opens nothing
    assert opened_region("open_page", '{"doc_id": "fr", "note": "region/Europe"}') is None  # nor another field
    assert opened_region("open_page", '{"doc_id": "region/Eur') is None  # malformed arguments
    assert opened_region("open_page", '["region/Europe"]') is None and opened_region("open_page", "") is None
