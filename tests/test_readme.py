"""The README says what the code and the last benchmark run say."""

from __future__ import annotations

import re

from bench import report

README = report.README.read_text()


def test_the_benchmark_headline_is_the_one_rendered_from_results_json() -> None:
    # Regenerate with `.venv/bin/python -m bench.report` after changing the figures or report.py.
    assert report.readme_headline(README) == report.headline(report.load())


def test_results_md_is_the_one_rendered_from_results_json() -> None:
    assert report.RESULTS.read_text() == report.report(report.load())


def test_every_curl_with_a_body_says_it_is_json() -> None:
    commands = re.findall(r"curl (?:\\\n|[^\n])*", README)
    with_body = [c for c in commands if re.search(r"\s-d\s", c)]
    assert with_body
    for command in with_body:
        assert "-H 'Content-Type: application/json'" in command, command


def test_shell_blocks_call_the_venv_programs_by_path() -> None:
    # The README says once that `signoff` is .venv/bin/signoff, and writes it so in every block.
    blocks = re.findall(r"```sh\n(.*?)```", README, flags=re.S)
    assert blocks
    for block in blocks:
        for line in block.splitlines():
            assert not re.search(r"(^|[\s;&|(])(signoff|pytest|python) ", line.lstrip("$ ")), line
