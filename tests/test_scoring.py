"""WideSearch-compatible scoring: every expected figure below is computed by hand in the comments.

The fixture tests/data/widesearch/ is written in exactly the published format: a JSONL task
file whose ``evaluation`` is a JSON *string*, and gold tables ``widesearch_gold/<id>.csv``
(one with a UTF-8 BOM, headers not yet normalised).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import pytest

from parlswarm.models import ScriptedModel
from parlswarm.scoring import (
    GoldTable,
    Judge,
    TaskScore,
    WideSearchTask,
    ascore_response,
    extract_table,
    load_gold,
    load_responses,
    load_tasks,
    load_tasks_report,
    render_markdown_table,
    score_response,
    summarize,
)
from parlswarm.scoring.metrics import date_near, extract_number, in_match, norm_date, norm_str, number_near, url_match
from parlswarm.scoring.table import TableError
from parlswarm.types import Message, content_text

DATA = Path(__file__).parent / "data" / "widesearch"
TASKS = DATA / "widesearch.jsonl"
GOLD = DATA / "widesearch_gold"


@pytest.fixture(scope="module")
def tasks() -> dict[str, WideSearchTask]:
    return {t.instance_id: t for t in load_tasks(TASKS)}


def gold(instance_id: str) -> GoldTable:
    return load_gold(GOLD, instance_id)


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    return render_markdown_table(list(header), [list(r) for r in rows])


NORDIC_HEADER = ["Country", "Capital", "Population", "Area km2", "Independence", "Website"]
NORDIC = [
    ["Denmark", "Copenhagen", "5,946,952", "42933", "5 June 1849", "https://www.denmark.dk/"],
    ["Finland", "Helsinki", "5603851", "338455", "6 December 1917", "https://valtioneuvosto.fi/en/frontpage"],
    ["Iceland", "Reykjavik", "387758", "103000", "17 June 1944", "https://www.government.is/"],
    ["Norway", "Oslo", "5550203", "323802", "7 June 1905", "https://www.regjeringen.no/en/id4/"],
    ["Sweden", "Stockholm", "10540886", "450295", "6 June 1523", "https://www.government.se/"],
]


def figures(s: TaskScore) -> dict[str, float | None]:
    return {
        "success": s.success,
        "row_p": round(s.row_precision, 4),
        "row_r": round(s.row_recall, 4),
        "row_f1": round(s.row_f1, 4),
        "item_p": round(s.item_precision, 4),
        "item_r": round(s.item_recall, 4),
        "item_f1": round(s.item_f1, 4),
    }


ALL_ONE = {"success": 1.0, "row_p": 1.0, "row_r": 1.0, "row_f1": 1.0, "item_p": 1.0, "item_r": 1.0, "item_f1": 1.0}
ALL_ZERO = {"success": 0.0, "row_p": 0.0, "row_r": 0.0, "row_f1": 0.0, "item_p": 0.0, "item_r": 0.0, "item_f1": 0.0}


# -- loading the published format ---------------------------------------------------------


def test_fixture_loads_unchanged(tasks: dict[str, WideSearchTask]) -> None:
    assert list(tasks) == ["ws_en_901", "ws_zh_902", "ws_en_903"]
    raw = json.loads(TASKS.read_text(encoding="utf-8").splitlines()[0])
    assert isinstance(raw["evaluation"], str)  # the published files hold it as a JSON string
    ev = tasks["ws_en_901"].evaluation
    assert ev.unique_columns == ["country"]
    assert ev.eval_pipeline["population"].metric == ["number_near"]
    assert ev.eval_pipeline["population"].tolerance == 0.05
    assert tasks["ws_zh_902"].language == "zh"
    assert tasks["ws_zh_902"].evaluation.eval_pipeline["简介"].metric == ["llm_judge"]
    # Headers are normalised as WideSearch's loader does ("Area km2" -> "areakm2").
    assert gold("ws_en_901").columns == ["country", "capital", "population", "areakm2", "independence", "website"]
    # The BOM of the Chinese gold file is not part of its first column's name.
    assert gold("ws_zh_902").columns == ["城市", "省份", "简介"]
    assert gold("ws_en_901").rows[0][2] == "5,946,952"  # a quoted CSV cell keeps its comma


def test_task_line_round_trips(tasks: dict[str, WideSearchTask]) -> None:
    task = tasks["ws_zh_902"]
    record = json.loads(task.to_jsonl_line())
    assert set(record) == {"instance_id", "query", "evaluation", "language"}  # spec left out when unset
    assert isinstance(record["evaluation"], str)
    assert WideSearchTask.model_validate(record) == task


def test_malformed_task_lines_are_reported_and_the_rest_load(tmp_path: Path) -> None:
    good = TASKS.read_text(encoding="utf-8").splitlines()
    bad_eval = json.loads(good[0]) | {"instance_id": "ws_bad_eval", "evaluation": "{not json"}
    bad_metric = json.loads(good[2]) | {"instance_id": "ws_bad_metric"}
    ev = json.loads(bad_metric["evaluation"])
    ev["eval_pipeline"]["hostcity"]["metric"] = ["fuzzy_match"]
    bad_metric["evaluation"] = json.dumps(ev)
    no_pipeline = json.loads(good[2]) | {"instance_id": "ws_no_pipeline"}
    ev = json.loads(no_pipeline["evaluation"])
    del ev["eval_pipeline"]["hostcountry"]
    no_pipeline["evaluation"] = json.dumps(ev)
    lines = [good[0], "{truncated", json.dumps(bad_eval), good[1], json.dumps(bad_metric), json.dumps(no_pipeline), good[2], good[0]]
    path = tmp_path / "tasks.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    report = load_tasks_report(path)
    assert [t.instance_id for t in report.tasks] == ["ws_en_901", "ws_zh_902", "ws_en_903"]
    messages = [str(e) for e in report.errors]
    assert len(messages) == 5
    assert messages[0].startswith(f"{path} line 2: not valid JSON")
    assert messages[1].startswith(f"{path} line 3 (task ws_bad_eval): evaluation: evaluation is not valid JSON")
    assert f"{path} line 5 (task ws_bad_metric)" in messages[2] and "unknown metric ['fuzzy_match']" in messages[2]
    assert f"{path} line 6 (task ws_no_pipeline)" in messages[3] and "no entry for column(s) ['hostcountry']" in messages[3]
    assert messages[4] == f"{path} line 8 (task ws_en_901): instance_id already used on line 1; this line is ignored"
    assert [t.instance_id for t in load_tasks(path)] == ["ws_en_901", "ws_zh_902", "ws_en_903"]


def test_missing_task_file_and_gold_name_the_path(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="task file not found: .*nope.jsonl"):
        load_tasks_report(tmp_path / "nope.jsonl")
    with pytest.raises(FileNotFoundError, match=r"gold table for task ws_x not found: .*ws_x\.csv"):
        load_gold(GOLD, "ws_x")


def test_gold_lacking_a_required_column_is_the_tasks_fault(tmp_path: Path, tasks: dict[str, WideSearchTask]) -> None:
    (tmp_path / "ws_en_903.csv").write_text("Season,Year,Host city\nSummer,2008,Beijing\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"ws_en_903\.csv \(task ws_en_903\) lacks required column\(s\) \['hostcountry'\]"):
        score_response(tasks["ws_en_903"], load_gold(tmp_path, "ws_en_903"), "| a | b |\n|---|---|\n| 1 | 2 |")


# -- gold as response ---------------------------------------------------------------------


@pytest.mark.parametrize("instance_id", ["ws_en_901", "ws_zh_902", "ws_en_903"])
def test_gold_as_response_scores_one_on_every_metric(tasks: dict[str, WideSearchTask], instance_id: str) -> None:
    g = gold(instance_id)
    s = score_response(tasks[instance_id], g, "Here is the table.\n\n" + table(g.columns, g.rows) + "\n\nHope it helps.")
    assert figures(s) == ALL_ONE
    assert s.fully_scored and not s.wrong_cells and s.error is None
    assert s.matched_rows == s.gold_rows == s.response_rows == len(g.rows)


# -- crafted responses on ws_en_901 (5 gold rows x 6 columns = 30 items) -----------------


def test_missing_rows(tasks: dict[str, WideSearchTask]) -> None:
    # 3 of 5 rows, all right. Row: tp 3, P 3/3 = 1, R 3/5 = 0.6, F1 2*1*0.6/1.6 = 0.75.
    # Item: tp 18, P 18/18 = 1, R 18/30 = 0.6, F1 0.75.
    s = score_response(tasks["ws_en_901"], gold("ws_en_901"), table(NORDIC_HEADER, NORDIC[:3]))
    assert figures(s) == {"success": 0.0, "row_p": 1.0, "row_r": 0.6, "row_f1": 0.75, "item_p": 1.0, "item_r": 0.6, "item_f1": 0.75}
    assert s.missing_keys == [["norway"], ["sweden"]]


def test_extra_rows(tasks: dict[str, WideSearchTask]) -> None:
    # 5 right rows + 2 not in the gold = 7 rows. Row: P 5/7 = 0.7143, R 1, F1 (10/7)/(12/7) = 0.8333.
    # Item: tp 30, P 30/42 = 0.7143, R 1, F1 0.8333.
    extra = [
        ["Estonia", "Tallinn", "1365884", "45339", "24 February 1918", "https://www.valitsus.ee/"],
        ["Greenland", "Nuuk", "56000", "2166086", "21 June 2009", "https://naalakkersuisut.gl/"],
    ]
    s = score_response(tasks["ws_en_901"], gold("ws_en_901"), table(NORDIC_HEADER, NORDIC + extra))
    assert figures(s) == {"success": 0.0, "row_p": 0.7143, "row_r": 1.0, "row_f1": 0.8333, "item_p": 0.7143, "item_r": 1.0, "item_f1": 0.8333}
    assert s.extra_keys == [["estonia"], ["greenland"]]


def test_wrong_cells_and_numbers_dates_urls_inside_and_outside_tolerance(tasks: dict[str, WideSearchTask]) -> None:
    rows = [r[:] for r in NORDIC]
    rows[0][1] = "Aarhus"  # wrong capital
    rows[1][2] = "5,700,000"  # |5700000-5603851| = 96149 <= 5% of 5603851 (280193): right
    rows[1][5] = "[Government](https://valtioneuvosto.fi/)"  # same host, other path: right
    rows[2][3] = "110000"  # |110000-103000| = 7000 > 1% of 103000 (1030): wrong
    rows[2][5] = "https://www.iceland.is"  # other host: wrong
    rows[3][2] = "5,550,000"  # |5550000-5550203| = 203 <= 5%: right
    rows[3][4] = "1905"  # reads as 1905-01-01, 157 days from 7 June 1905 > 31: wrong
    rows[4][3] = "450,000"  # |450000-450295| = 295 <= 1% of 450295 (4503): right
    rows[4][4] = "June 1523"  # reads as 1523-06-01, 5 days from 6 June 1523: right
    s = score_response(tasks["ws_en_901"], gold("ws_en_901"), table(NORDIC_HEADER, rows))
    # Wrong cells: Denmark capital, Iceland area and website, Norway independence = 4.
    # Rows (min over cells): DK 0, FI 1, IS 0, NO 0, SE 1 -> tp 2; P = R = F1 = 2/5 = 0.4.
    # Items: tp 30 - 4 = 26; P = R = F1 = 26/30 = 0.8667.
    assert figures(s) == {"success": 0.0, "row_p": 0.4, "row_r": 0.4, "row_f1": 0.4, "item_p": 0.8667, "item_r": 0.8667, "item_f1": 0.8667}
    wrong = {(c.key[0], c.column) for c in s.wrong_cells}
    assert wrong == {("denmark", "capital"), ("iceland", "areakm2"), ("iceland", "website"), ("norway", "independence")}


def test_reordered_columns_and_renamed_headers_that_normalise(tasks: dict[str, WideSearchTask]) -> None:
    # Columns in another order, headers in other case/spacing/markup: "**Country**" and
    # "Area (km2)" match "country" and "areakm2" once punctuation is ignored.
    order = [5, 4, 3, 2, 1, 0]
    header = ["WEBSITE", "Independence", "Area (km2)", "population", "Cap ital", "**Country**"]
    rows = [[r[i] for i in order] for r in NORDIC]
    s = score_response(tasks["ws_en_901"], gold("ws_en_901"), table(header, rows))
    assert figures(s) == ALL_ONE
    assert {(a.response, a.gold, a.by) for a in s.column_alignments} == {
        ("**country**", "country", "loose"),
        ("area(km2)", "areakm2", "loose"),
    }


def test_renamed_column_without_a_judge_is_reported_not_guessed(tasks: dict[str, WideSearchTask]) -> None:
    header = ["Country", "Capital city", "Population", "Area km2", "Independence", "Website"]
    s = score_response(tasks["ws_en_901"], gold("ws_en_901"), table(header, NORDIC))
    # WideSearch fails a task whose columns still differ after mapping: every metric 0.
    assert figures(s) == ALL_ZERO
    assert s.error_kind == "columns"
    assert s.missing_columns == ["capital"] and s.unexpected_columns == ["capitalcity"]
    assert "no judge to map column names" in (s.error or "")


def test_extra_column_fails_the_task_as_in_widesearch(tasks: dict[str, WideSearchTask]) -> None:
    s = score_response(tasks["ws_en_901"], gold("ws_en_901"), table(NORDIC_HEADER + ["Notes"], [r + ["-"] for r in NORDIC]))
    assert figures(s) == ALL_ZERO
    assert s.unexpected_columns == ["notes"] and s.missing_columns == []


def test_prose_around_an_unfenced_table(tasks: dict[str, WideSearchTask]) -> None:
    body = table(NORDIC_HEADER, NORDIC[:4], ).replace("```markdown\n", "").replace("\n```", "")
    text = f"I searched the government sites.\nHere is what I found:\n\n{body}\n\nSweden was not found. Sources: wiki."
    s = score_response(tasks["ws_en_901"], gold("ws_en_901"), text)
    # 4 of 5 rows right: row and item P 1, R 0.8, F1 1.6/1.8 = 0.8889.
    assert figures(s) == {"success": 0.0, "row_p": 1.0, "row_r": 0.8, "row_f1": 0.8889, "item_p": 1.0, "item_r": 0.8, "item_f1": 0.8889}


def test_first_markdown_block_wins_over_other_tables(tasks: dict[str, WideSearchTask]) -> None:
    draft = "| Country | Capital |\n|---|---|\n| Denmark | Aarhus |\n"
    text = f"Draft:\n{draft}\nFinal answer:\n{table(NORDIC_HEADER, NORDIC)}"
    assert figures(score_response(tasks["ws_en_901"], gold("ws_en_901"), text)) == ALL_ONE


def test_no_table_scores_zero_and_says_why(tasks: dict[str, WideSearchTask]) -> None:
    s = score_response(tasks["ws_en_901"], gold("ws_en_901"), "I could not find the data, sorry.")
    assert figures(s) == ALL_ZERO
    assert s.error == "no markdown table in the response" and s.error_kind == "no_table"
    assert s.gold_rows == 5


def test_row_with_more_cells_than_the_header_fails_like_pandas(tasks: dict[str, WideSearchTask]) -> None:
    text = "| country | capital |\n|---|---|\n| Denmark | Copenhagen | extra |\n"
    s = score_response(tasks["ws_en_901"], gold("ws_en_901"), text)
    assert figures(s) == ALL_ZERO and s.error_kind == "bad_table"
    with pytest.raises(TableError, match="more '\\|'-separated fields"):
        extract_table(text)


def test_duplicate_keys_keep_the_first_row(tasks: dict[str, WideSearchTask]) -> None:
    dup = ["denmark", "Aarhus", "1", "1", "1 January 2000", "https://x.dk"]
    s = score_response(tasks["ws_en_901"], gold("ws_en_901"), table(NORDIC_HEADER, NORDIC + [dup]))
    assert figures(s) == ALL_ONE
    assert s.duplicate_response_keys == 1 and s.response_rows == 5


def test_missing_value_tokens_agree_as_pandas_reads_them(tasks: dict[str, WideSearchTask]) -> None:
    g = gold("ws_en_901").model_copy(deep=True)
    g.rows[2][5] = "N/A"  # the gold has no website for Iceland
    rows = [r[:] for r in NORDIC]
    rows[2][5] = ""  # nor does the response
    assert figures(score_response(tasks["ws_en_901"], g, table(NORDIC_HEADER, rows))) == ALL_ONE


# One cell changed in the gold answer of ws_en_901. With one wrong cell: rows 4/5 = 0.8,
# items 29/30 = 0.9667; with none, 1.0. These figures also came out of WideSearch's own
# evaluation.py (pandas 2.3.0, its LLM calls answering nothing) for the same responses.
ONE_WRONG = {"success": 0.0, "row_p": 0.8, "row_r": 0.8, "row_f1": 0.8, "item_p": 0.9667, "item_r": 0.9667, "item_f1": 0.9667}


@pytest.mark.parametrize(
    ("row", "col", "text", "expected"),
    [
        (2, 5, "", ONE_WRONG),  # no URL vs www.government.is: host sets differ
        (2, 2, "N/A", ONE_WRONG),  # missing -> extract_number "NULL" vs 387758
        (2, 2, "387,758 (2024)", ALL_ONE),  # first number 387758
        (4, 4, "1523", ONE_WRONG),  # 1523-01-01 is 156 days from 6 June 1523
        (4, 4, "1523-06-06", ALL_ONE),
        (0, 5, "[denmark.dk](https://www.denmark.dk/)", ALL_ONE),  # host www.denmark.dk
        (0, 0, "**Denmark**", ALL_ONE),  # norm_str drops the asterisks
        (0, 1, '"Copenhagen"', ALL_ONE),  # wrapping quotes go, as pandas reads the cell
        (0, 3, "42933.0", ALL_ONE),  # number_near: equal
    ],
)
def test_single_cell_variants(tasks: dict[str, WideSearchTask], row: int, col: int, text: str, expected: dict[str, float]) -> None:
    rows = [r[:] for r in NORDIC]
    rows[row][col] = text
    assert figures(score_response(tasks["ws_en_901"], gold("ws_en_901"), table(NORDIC_HEADER, rows))) == expected


# -- keys ---------------------------------------------------------------------------------


def test_multi_column_keys_in_match_and_loose_key_alignment(tasks: dict[str, WideSearchTask]) -> None:
    # Keys (season, year). "2012 (XXX Olympiad)" -> extract_number -> "2012"; "Vancouver" is
    # in "vancouver(withwhistler)" (in_match); "Summer." aligns with "Summer" once
    # punctuation is ignored. The 2014 row is missing.
    rows = [
        ["Summer.", "2008", "Beijing", "China"],
        ["Winter", "2010", "Vancouver", "Canada"],
        ["Summer", "2012 (XXX Olympiad)", "London", "United Kingdom"],
    ]
    s = score_response(tasks["ws_en_903"], gold("ws_en_903"), table(["Season", "Year", "Host city", "Host country"], rows))
    # 3 of 4 rows right: P 1, R 0.75, F1 1.5/1.75 = 0.8571 (rows and items alike).
    assert figures(s) == {"success": 0.0, "row_p": 1.0, "row_r": 0.75, "row_f1": 0.8571, "item_p": 1.0, "item_r": 0.75, "item_f1": 0.8571}
    assert [(a.column, a.response, a.gold, a.by) for a in s.key_alignments] == [("season", "Summer.", "Summer", "loose")]
    assert s.missing_keys == [["winter", "2014"]]


def test_unaligned_key_without_a_judge_counts_as_missing_and_extra(tasks: dict[str, WideSearchTask]) -> None:
    rows = [r[:] for r in NORDIC]
    rows[1][0] = "Suomi"  # Finland's own name: only a judge can align it
    s = score_response(tasks["ws_en_901"], gold("ws_en_901"), table(NORDIC_HEADER, rows))
    # 4 rows join: P 4/5, R 4/5, F1 0.8 (rows and items: 24/30).
    assert figures(s) == {"success": 0.0, "row_p": 0.8, "row_r": 0.8, "row_f1": 0.8, "item_p": 0.8, "item_r": 0.8, "item_f1": 0.8}
    assert s.extra_keys == [["suomi"]] and s.missing_keys == [["finland"]]


# -- llm_judge and the judge --------------------------------------------------------------

ZH_HEADER = ["城市", "省份", "简介"]


def test_llm_judge_cells_without_a_judge_are_unscored_not_guessed(tasks: dict[str, WideSearchTask]) -> None:
    rows = [
        ["杭州", "浙江", "浙江省省会，以西湖闻名。"],  # same text as the gold: counted right without asking
        ["成都", "四川", "天府之国，大熊猫的故乡。"],  # different text: needs the judge
        ["苏州", "江苏", "园林之城。"],  # different text: needs the judge
    ]
    s = score_response(tasks["ws_zh_902"], gold("ws_zh_902"), table(ZH_HEADER, rows))
    # 9 cells, 2 unscored. Hangzhou's row is 1; Chengdu's and Suzhou's have only right
    # scored cells and one unscored, so they are undecided and leave the row counts:
    # row P = 1/(3-2) = 1, R = 1/(3-2) = 1. Items: tp 7 of 9-2 = 7 -> P = R = 1.
    assert figures(s) == {"success": None, "row_p": 1.0, "row_r": 1.0, "row_f1": 1.0, "item_p": 1.0, "item_r": 1.0, "item_f1": 1.0}
    assert s.unscored_cells == 2 and s.undecided_rows == 2 and not s.fully_scored
    assert [c.key for c in s.unscored] == [["成都"], ["苏州"]]
    assert any("2 llm_judge cell(s) unscored (no judge was given)" in n for n in s.notes)

    rows[2][1] = "江西"  # a wrong province decides Suzhou's row: 0
    s = score_response(tasks["ws_zh_902"], gold("ws_zh_902"), table(ZH_HEADER, rows))
    # Rows: Hangzhou 1, Chengdu undecided, Suzhou 0 -> P = R = 1/2 = 0.5.
    # Items: 2 unscored, 1 wrong -> tp 6 of 7 -> P = R = F1 = 0.8571. Success is decided: 0.
    assert figures(s) == {"success": 0.0, "row_p": 0.5, "row_r": 0.5, "row_f1": 0.5, "item_p": 0.8571, "item_r": 0.8571, "item_f1": 0.8571}


class JudgeScript:
    """A judge model's replies: alignments from ``maps``, grades from ``grades`` by response text."""

    def __init__(self, maps: dict[str, str] | None = None, grades: dict[str, int] | None = None, garbled: bool = False):
        self.maps = maps or {}
        self.grades = grades or {}
        self.garbled = garbled
        self.prompts: list[str] = []

    def __call__(self, messages: Sequence[Message]) -> str:
        prompt = content_text(messages[-1].content)
        self.prompts.append(prompt)
        if self.garbled:
            return "I think they are all fine."
        if "Items:" in prompt:
            items = json.loads(prompt.split("Items:\n", 1)[1].split("\n\nScore each item", 1)[0])
            scores = {k: self.grades[v["response"]] for k, v in items.items() if v["response"] in self.grades}
            return "Let me check each.\n```json\n" + json.dumps(scores) + "\n```"
        return "```json\n" + json.dumps(self.maps, ensure_ascii=False) + "\n```"


async def test_judge_grades_llm_judge_cells(tasks: dict[str, WideSearchTask]) -> None:
    rows = [
        ["杭州", "浙江", "浙江省省会，以西湖闻名。"],
        ["成都", "四川", "天府之国，大熊猫的故乡。"],
        ["苏州", "江苏", "一个沿海工业城市。"],
    ]
    script = JudgeScript(grades={"天府之国，大熊猫的故乡。": 1, "一个沿海工业城市。": 0})
    s = await ascore_response(tasks["ws_zh_902"], gold("ws_zh_902"), table(ZH_HEADER, rows), ScriptedModel(script, name="judge"))
    # One grading call for the column's two differing cells. Rows: 1, 1, 0 -> P = R = 2/3.
    # Items: 8 of 9 -> 0.8889.
    assert len(script.prompts) == 1 and "简介与参考答案描述的是同一城市" in script.prompts[0]
    assert figures(s) == {"success": 0.0, "row_p": 0.6667, "row_r": 0.6667, "row_f1": 0.6667, "item_p": 0.8889, "item_r": 0.8889, "item_f1": 0.8889}
    assert s.fully_scored and s.judge == "judge"


async def test_judge_maps_columns_and_aligns_keys(tasks: dict[str, WideSearchTask]) -> None:
    header = ["Country", "Capital city", "Population", "Area km2", "Independence", "Website"]
    rows = [r[:] for r in NORDIC]
    rows[1][0] = "Suomi"
    # The judge may answer with names that are not in the lists; those are ignored.
    script = JudgeScript(maps={"capitalcity": "capital", "Suomi": "Finland", "Ghost": "Norway"})
    s = await ascore_response(tasks["ws_en_901"], gold("ws_en_901"), table(header, rows), Judge(ScriptedModel(script)))
    assert figures(s) == ALL_ONE
    assert [(a.response, a.gold, a.by) for a in s.column_alignments] == [("capitalcity", "capital", "judge")]
    assert [(a.column, a.response, a.gold, a.by) for a in s.key_alignments] == [("country", "Suomi", "Finland", "judge")]
    # Only what the deterministic steps left over is asked: one column, one key.
    assert '["capitalcity"]' in script.prompts[0] and '["capital"]' in script.prompts[0]
    # Key values are aligned against every gold value (a key value may repeat across rows).
    assert '["Suomi"]' in script.prompts[1]
    assert '["Denmark", "Finland", "Iceland", "Norway", "Sweden"]' in script.prompts[1]


async def test_unreadable_judge_replies_leave_cells_unscored(tasks: dict[str, WideSearchTask]) -> None:
    rows = [["杭州", "浙江", "西湖。"], ["成都", "四川", "熊猫。"], ["苏州", "江苏", "园林。"]]
    script = JudgeScript(garbled=True)
    s = await ascore_response(tasks["ws_zh_902"], gold("ws_zh_902"), table(ZH_HEADER, rows), ScriptedModel(script))
    assert s.unscored_cells == 3 and s.success is None
    assert any("gave no JSON object for column 简介 of ws_zh_902" in n for n in s.notes)


async def test_sync_scoring_without_a_judge_works_inside_an_event_loop(tasks: dict[str, WideSearchTask]) -> None:
    g = gold("ws_en_903")
    assert figures(score_response(tasks["ws_en_903"], g, table(g.columns, g.rows))) == ALL_ONE
    with pytest.raises(RuntimeError, match="await ascore_response"):
        score_response(tasks["ws_en_903"], g, table(g.columns, g.rows), ScriptedModel(JudgeScript()))


# -- Avg@N / Max@N ------------------------------------------------------------------------


def test_avg_max_min_and_pass_at_n() -> None:
    def s(task: str, trial: int, f1: float, success: float | None) -> TaskScore:
        return TaskScore(instance_id=task, trial=trial, item_f1=f1, row_f1=f1, success=success)

    summary = summarize(
        [
            s("a", 0, 1.0, 1.0), s("a", 1, 0.5, 0.0), s("a", 2, 0.0, 0.0),
            s("b", 2, 0.4, 0.0), s("b", 0, 0.8, 0.0), s("b", 1, 0.6, None),
        ]
    )
    # Item-F1: a -> avg 0.5, max 1.0, min 0.0; b -> avg 0.6, max 0.8, min 0.4.
    # Over tasks: Avg@3 = 0.55, Max@3 = 0.9, Min@3 = 0.2.
    f1 = summary.metrics["item_f1"]
    assert (round(f1.avg, 4), round(f1.max, 4), round(f1.min, 4), f1.tasks) == (0.55, 0.9, 0.2, 2)  # type: ignore[arg-type]
    # Success: a -> [1, 0, 0]: avg 1/3, pass 1; b -> [0, 0] (the undecided trial is left out):
    # avg 0, pass 0. Avg@3 = 1/6 = 0.1667, Pass@3 = 0.5.
    ok = summary.metrics["success"]
    assert (round(ok.avg, 4), ok.max) == (0.1667, 0.5)  # type: ignore[arg-type]
    assert summary.trials == 3 and summary.tasks == 2 and summary.undecided_trials == 1


def test_avg_and_max_over_real_trials(tasks: dict[str, WideSearchTask]) -> None:
    t, g = tasks["ws_en_901"], gold("ws_en_901")
    scores = [
        score_response(t, g, table(NORDIC_HEADER, NORDIC), trial=0),  # Item-F1 1.0
        score_response(t, g, table(NORDIC_HEADER, NORDIC[:3]), trial=1),  # Item-F1 0.75
        score_response(t, g, "no table", trial=2),  # 0.0
    ]
    f1 = summarize(scores).metrics["item_f1"]
    # Avg@3 = (1 + 0.75 + 0) / 3 = 0.5833; Max@3 = 1.0.
    assert (round(f1.avg, 4), f1.max) == (0.5833, 1.0)  # type: ignore[arg-type]


# -- pieces -------------------------------------------------------------------------------


def test_table_extraction_details() -> None:
    fenced = "```markdown\nSome title\n| A Col | b |\n|:--|--:|\n| 1 | two |\n| 3 |\n```"
    t = extract_table(fenced)
    assert t is not None and t.source == "markdown_block"
    assert t.columns == ["acol", "b"] and t.rows == [["1", "two"], ["3", ""]]  # short row padded
    # Without fences only lines that start with '|' are read (as in WideSearch): a table
    # without outer pipes is only understood inside a ```markdown block.
    bare = extract_table("x | y | z\n---|---|---\n1 | 2 | 3")
    assert bare is not None and bare.columns == ["y", "z"] and bare.rows == []
    assert extract_table("```markdown\nx | y | z\n---|---|---\n1 | 2 | 3\n```").rows == [["1", "2", "3"]]  # type: ignore[union-attr]
    assert extract_table("a | b | c") is None  # fewer than four pipes
    quoted = extract_table('| "City" | b |\n|---|---|\n| "Paris" | say ""hi"" |')
    assert quoted is not None and quoted.columns == ["city", "b"] and quoted.rows == [["Paris", 'say ""hi""']]


def test_preprocessors_and_metrics() -> None:
    assert extract_number("1,234.5 km²") == "1234.5" and extract_number("about 12%") == "12%"
    assert extract_number("unknown") == "NULL" and extract_number("5.6 million") == "5.6"
    assert norm_str(" **New York** ") == "newyork"
    assert norm_date("5 June 1849") == "1849-06-05" and norm_date("not a date") == "not a date"
    assert number_near("12%", "0.12", 0.0) == 1.0  # percent read as a fraction
    assert number_near("NULL", "NULL", 0.1) == 1.0 and number_near("NULL", "3", 0.1) == 0.0
    assert number_near("105", "100", 0.05) == 1.0 and number_near("106", "100", 0.05) == 0.0
    assert date_near("12 March 2011 (est.)", "1 April 2011") == 1.0  # a time zone read from "(est.)" is dropped
    assert date_near("nonsense", "also nonsense") == 1.0  # two non-dates agree, as in WideSearch
    assert url_match("[site](https://WWW.Example.org/a)", "see https://www.example.org/b") == 1.0
    assert url_match("https://a.org https://b.org", "https://a.org") == 0.0
    assert in_match("london", "london,uk") == 1.0 and in_match("", "london") == 0.0 and in_match("", "") == 1.0


def test_responses_from_jsonl_and_folder(tmp_path: Path) -> None:
    path = tmp_path / "responses.jsonl"
    path.write_text(
        "\n".join(
            [
                json.dumps({"instance_id": "a", "response": "x"}),
                json.dumps({"instance_id": "a", "response": "y", "trial_idx": 1, "messages": []}),
                json.dumps({"instance_id": "a", "response": "z", "trial": 1}),
                json.dumps({"response": "no id"}),
                "not json",
            ]
        ),
        encoding="utf-8",
    )
    rs = load_responses(path)
    assert [(r.instance_id, r.trial, r.response) for r in rs.responses] == [("a", 0, "x"), ("a", 1, "y")]
    assert [str(e) for e in rs.errors] == [
        f"{path} line 3 (task a): a second response for trial 1 (the first, at {path} line 2, is kept)",
        f"{path} line 4: no instance_id",
        f"{path} line 5: not valid JSON: Expecting value: line 1 column 1 (char 0)",
    ]
    folder = tmp_path / "answers"
    (folder / "trial_1").mkdir(parents=True)
    (folder / "a.md").write_text("A0", encoding="utf-8")
    (folder / "b.txt").write_text("B0", encoding="utf-8")
    (folder / "trial_1" / "a.md").write_text("A1", encoding="utf-8")
    (folder / "notes.json").write_text("{}", encoding="utf-8")
    rs = load_responses(folder)
    assert sorted((r.instance_id, r.trial, r.response) for r in rs.responses) == [("a", 0, "A0"), ("a", 1, "A1"), ("b", 0, "B0")]


def test_fixture_folder_is_self_contained(tmp_path: Path) -> None:
    # The fixture is the published layout: copying it elsewhere changes nothing.
    shutil.copytree(DATA, tmp_path / "ws")
    assert len(load_tasks(tmp_path / "ws" / "widesearch.jsonl")) == 3
    assert load_gold(tmp_path / "ws" / "widesearch_gold", "ws_en_903").rows[1][2] == "Vancouver (with Whistler)"
