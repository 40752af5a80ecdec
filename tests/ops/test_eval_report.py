"""The HTML evaluation report: what it says, and that its charts can be read."""

from __future__ import annotations

import itertools
import re
from typing import Any

import pytest

from swarmlearn.core.scenario import load_scenario
from swarmlearn.eval import EvalReport, evaluate
from swarmlearn.ops.report import HtmlReport, eval_html, learning_html


@pytest.fixture(scope="module")
def report() -> EvalReport:
    sc = load_scenario("troubleshooting")
    return evaluate(sc, runs=4, seed=42, variants=["", *sc.variants], store=None)


def _figures(monkeypatch: pytest.MonkeyPatch, build: Any, *args: Any) -> tuple[str, list[Any]]:
    """The page's HTML and the matplotlib figures it embedded, drawn."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    figures: list[Any] = []
    keep = HtmlReport.figure

    def capture(self: HtmlReport, fig: Any, caption: str = "") -> None:
        figures.append(fig)
        keep(self, fig, caption)

    monkeypatch.setattr(HtmlReport, "figure", capture)
    page = build(*args)
    for fig in figures:
        FigureCanvasAgg(fig).draw()
    return page.render(), figures


def _cells(html: str, row: int = 0) -> tuple[list[str], list[str]]:
    """Headers and the cells of one body row of the first table."""
    table = html[html.index("<table>"):html.index("</table>")]
    heads = re.findall(r"<th>(.*?)</th>", table)
    rows = re.findall(r"<tr>(.*?)</tr>", table.split("<tbody>")[1])
    return heads, re.findall(r"<td>(.*?)</td>", rows[row])


def test_pass_at_k_columns_only_when_measured(report: EvalReport) -> None:
    heads, _ = _cells(eval_html(report).render())
    assert not [h for h in heads if h.startswith("pass@")]  # one attempt: pass@1 is success
    three = evaluate(load_scenario("troubleshooting"), runs=3, seed=42, attempts=3, store=None)
    heads, cells = _cells(eval_html(three).render())
    assert [h for h in heads if h.startswith("pass@")] == ["pass@3"]
    assert cells[heads.index("pass@3")] != "–"


def test_a_built_in_scenario_is_not_called_a_file(report: EvalReport) -> None:
    html = eval_html(report).render()
    assert "built-in scenario troubleshooting" in html and "scenario file" not in html
    from_file = evaluate(load_scenario("examples/troubleshooting.toml"), runs=2, store=None)
    assert "scenario file examples/troubleshooting.toml" in eval_html(from_file).render()


def test_numbers_have_one_format_per_column_and_metrics_have_names(report: EvalReport) -> None:
    html = eval_html(report).render()
    heads, cells = _cells(html)
    formats = {"success": r"\d+\.\d%", "95% CI": r"\d+\.\d% – \d+\.\d%",
               "actions to solve": r"\d+\.\d|–", "ticks": r"\d+\.\d", "score": r"\d\.\d\d",
               "invalid actions": r"\d+\.\d%"}
    for row in range(len(report.variants)):
        cells = _cells(html, row)[1]
        for head, pattern in formats.items():
            assert re.fullmatch(pattern, cells[heads.index(head)]), (head, cells)
    compared = html[html.index("Compared with"):]
    assert "success_rate" not in compared and "<td>success rate</td>" in compared
    assert re.search(r"<td>[+-]\d+\.\d pp</td>", compared)


def test_variant_labels_do_not_overlap_and_the_legend_covers_no_bar(
    report: EvalReport, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, figures = _figures(monkeypatch, eval_html, report)
    fig = figures[0]
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        boxes = [t.get_window_extent(renderer) for t in ax.get_xticklabels() if t.get_text()]
        assert len(boxes) == len(report.variants)
        assert not [pair for pair in itertools.combinations(boxes, 2) if pair[0].overlaps(pair[1])]
    outcomes = fig.axes[2]
    legend = outcomes.get_legend().get_window_extent(renderer)
    assert not [bar for bar in outcomes.patches
                if bar.get_height() > 0 and bar.get_window_extent(renderer).overlaps(legend)]


def test_the_learning_report_counts_whole_sessions_and_writes_words(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from swarmlearn.learn.loop import LearningRunConfig, run_proof

    sc = load_scenario("troubleshooting", variant="heldout")
    cfg = LearningRunConfig(sessions=20, episodes=1, runs=2, trials=0, analyze_every=0, last=3)
    html, figures = _figures(monkeypatch, learning_html, run_proof(sc, None, cfg))
    text = re.sub(r"<[^>]+>", " ", re.sub(r'src="data:[^"]+"', "", html))
    assert not re.search(r"\b(True|False|None|nan)\b", text)
    for ax in figures[0].axes:
        ticks = [t.get_text().replace("\N{MINUS SIGN}", "-") for t in ax.get_xticklabels()
                 if t.get_text()]
        assert ticks and all(re.fullmatch(r"-?\d+", t) for t in ticks), ticks
