"""What the README shows is what its commands print: the demo's metrics and the production
walkthrough's lines come from running the README's own commands here.

The README marks each checked block with an HTML comment, ``<!-- readme-check: NAME -->``,
right before a fenced block: ``demo-output`` holds lines `make demo` prints,
``walkthrough`` the commands of the production walkthrough (run as written, from a folder
where the demo's runs are) and ``walkthrough-output`` lines they print. A change that alters
those outputs fails here until the README says what the commands now do.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import require_fashion_mnist

REPO = Path(__file__).parents[2]
README = REPO / "README.md"
MARK = re.compile(r"<!-- readme-check: ([a-z-]+) -->\n```[a-z]*\n(.*?)```", re.DOTALL)


def _checked_blocks() -> dict[str, list[str]]:
    """The README's checked blocks by name, each as its non-empty lines."""
    blocks = {name: body.splitlines() for name, body in MARK.findall(README.read_text())}
    return {name: [line for line in lines if line.strip()] for name, lines in blocks.items()}


def _as_run_here(command: str) -> list[str]:
    """A README command line as this interpreter runs it: ``.venv/bin/kaizen`` is the
    package's command, ``.venv/bin/python scripts/...`` the repository's script."""
    words = shlex.split(command, comments=True)
    if words[0] == ".venv/bin/kaizen":
        return [sys.executable, "-m", "kaizen.cli", *words[1:]]
    if words[0] == ".venv/bin/python":
        return [sys.executable, str(REPO / words[1]), *words[2:]]
    raise AssertionError(f"the README's walkthrough runs {words[0]}, which this test cannot")


def _run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=env)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """`make demo`'s command run in a fresh folder: the folder and what it printed."""
    require_fashion_mnist()
    here = tmp_path_factory.mktemp("readme")
    done = _run(_as_run_here(".venv/bin/kaizen demo"), here)
    assert done.returncode == 0, done.stderr
    return here, done.stdout + done.stderr


def test_the_readme_marks_the_blocks_this_test_checks() -> None:
    assert set(_checked_blocks()) == {"demo-output", "walkthrough", "walkthrough-output"}


def test_the_demo_prints_what_the_readme_shows(demo: tuple[Path, str]) -> None:
    here, printed = demo
    for line in _checked_blocks()["demo-output"]:
        assert line.strip() in printed, f"README line not printed by `make demo`: {line}"
    final = {
        strategy: json.loads((here / "runs" / "demo" / strategy / "results.json").read_text())[
            "metrics"
        ]["final_accuracy"]["value"]
        for strategy in ("finetune", "kaizen-refit")
    }
    # the demo's verdict: Kaizen with the re-fit keeps more of the earlier tasks than fine-tuning
    assert final["kaizen-refit"] > final["finetune"], final


def test_the_walkthrough_prints_what_the_readme_shows(demo: tuple[Path, str]) -> None:
    here, _ = demo
    blocks = _checked_blocks()
    printed = []
    for command in blocks["walkthrough"]:
        done = _run(_as_run_here(command), here)
        # `kaizen update` exits 3 when the gate keeps the new version as a candidate
        assert done.returncode in (0, 3), f"{command}: {done.stderr}"
        printed.append(done.stdout + done.stderr)
    for line in blocks["walkthrough-output"]:
        assert any(line.strip() in output for output in printed), (
            f"README line not printed by the walkthrough: {line}"
        )
