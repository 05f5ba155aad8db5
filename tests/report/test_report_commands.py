"""The report, compare and sweep subcommands, through a parser built with register()."""

from __future__ import annotations

import argparse
import io

import pytest
from rich.console import Console

from kaizen.errors import KaizenError
from kaizen.report import commands
from kaizen.sweep import commands as sweep_commands


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kaizen")
    register_into = parser.add_subparsers(dest="command", required=True)
    commands.register(register_into)
    sweep_commands.register(register_into)
    return parser


def _invoke(*argv: str) -> tuple[int, str]:
    args = _parser().parse_args(list(argv))
    output = io.StringIO()
    code = args.handler(args, Console(file=output, width=300))
    return code, output.getvalue()


def test_report_writes_both_files_and_prints_their_paths(make_run, tmp_path):
    run_dir = make_run(tmp_path / "run")
    code, output = _invoke("report", str(run_dir))
    assert code == 0
    assert str(run_dir / "report.md") in output
    assert str(run_dir / "report.html") in output
    assert (run_dir / "report.md").is_file()
    assert (run_dir / "report.html").is_file()


def test_report_of_a_directory_without_results_is_a_kaizen_error(tmp_path):
    with pytest.raises(KaizenError, match=r"has no results\.json: run `kaizen run"):
        _invoke("report", str(tmp_path))


def test_compare_writes_to_out_and_prints_the_table(make_run, tmp_path):
    first = make_run(tmp_path / "a")
    second = make_run(tmp_path / "b", seed=1)
    code, output = _invoke("compare", str(first), str(second), "--out", str(tmp_path / "cmp"))
    assert code == 0
    assert "0.7000 ± 0.0000" in output
    for suffix in ("md", "html", "csv"):
        assert (tmp_path / "cmp" / f"compare.{suffix}").is_file()
        assert str(tmp_path / "cmp" / f"compare.{suffix}") in output


def test_compare_reads_the_probe_it_is_given(make_run, tmp_path):
    perfect = [[1.0, 0.0, 0.0], [1.0, 1.0, 0.0], [1.0, 1.0, 1.0]]
    run = make_run(tmp_path / "a", probes={"knn": perfect})
    code, output = _invoke("compare", str(run), "--probe", "knn", "--out", str(tmp_path / "cmp"))
    assert code == 0
    assert "1.0000 ± 0.0000" in output and "0.7000 ± 0.0000" not in output


def test_compare_defaults_to_the_compare_directory(make_run, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_run(tmp_path / "a")
    assert _invoke("compare", "a")[0] == 0
    assert (tmp_path / "compare" / "compare.md").is_file()


def test_sweep_options_and_defaults():
    args = _parser().parse_args(["sweep"])
    assert args.config == "cifar100"
    assert args.ssl == ["simclr", "mocov2plus", "byol", "vicreg"]
    assert args.strategies == ["finetune", "cassle", "kaizen"]
    assert args.seeds == [0, 1, 2]
    argv = "sweep demo train.epochs=2 --ssl byol --strategies kaizen,scratch --seeds 3,4 --out root"
    args = _parser().parse_args(argv.split())
    assert (args.config, args.ssl, args.strategies, args.seeds) == (
        "demo",
        ["byol"],
        ["kaizen", "scratch"],
        [3, 4],
    )
    assert args.overrides == ["train.epochs=2"]


@pytest.mark.parametrize("seeds", ["a,b", "-1", ","])
def test_sweep_rejects_bad_seeds(seeds, capsys):
    with pytest.raises(SystemExit) as exit_info:
        _parser().parse_args(["sweep", "--seeds", seeds])
    assert exit_info.value.code == 2


def test_sweep_skips_complete_runs_and_prints_the_comparison(make_run, tmp_path):
    for seed in (0, 1):
        make_run(tmp_path / f"simclr-kaizen-seed{seed}", seed=seed)
    # the base and its overrides stay together, after (or before) the options
    argv = (
        f"sweep --ssl simclr --strategies kaizen --seeds 0,1 --out {tmp_path} demo train.epochs=1"
    )
    code, output = _invoke(*argv.split())
    assert code == 0
    assert output.count("complete, skipped") == 2
    assert str(tmp_path / "compare" / "compare.md") in output
    assert (tmp_path / "compare" / "compare.csv").is_file()


def test_sweep_without_a_base_reads_the_first_word_as_an_override(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(sweep_commands, "sweep", lambda *args, **kwargs: calls.append(args))
    _invoke("sweep", "train.epochs=1", "optim.lr=0.5", "--out", str(tmp_path))
    base, _, _, _, _, overrides = calls[0]
    assert base == "cifar100"
    assert overrides == ["train.epochs=1", "optim.lr=0.5"]


def test_compare_labels_the_projects_extension_as_not_the_papers_method(make_run, tmp_path):
    paper = make_run(tmp_path / "a")
    ours = make_run(tmp_path / "b", strategy="kaizen-replay-kd")
    _invoke("compare", str(paper), "--out", str(tmp_path / "paper"))
    _invoke("compare", str(paper), str(ours), "--out", str(tmp_path / "both"))
    note = "`kaizen-replay-kd` is kaizen-cl's extension, not a published method"
    assert note not in (tmp_path / "paper" / "compare.md").read_text()
    assert note in (tmp_path / "both" / "compare.md").read_text()
