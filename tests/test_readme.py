"""The README says what the code and the last benchmark run say."""

from __future__ import annotations

from bench import report

README = report.README.read_text()


def test_the_benchmark_headline_is_the_one_rendered_from_results_json() -> None:
    # Regenerate with `.venv/bin/python -m bench.report` after changing the figures or report.py.
    assert report.readme_headline(README) == report.headline(report.load())


def test_results_md_is_the_one_rendered_from_results_json() -> None:
    assert report.RESULTS.read_text() == report.report(report.load())
