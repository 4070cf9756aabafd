"""``benchmarks/instructions.py``: the arithmetic and the floor loops behind its instruction counts.

The script itself needs valgrind and minutes of CPU, so CI does not run it; these tests keep the
parts that decide its figures honest: the marginal cost, reading callgrind's total, the stream
and floor files it builds, and the floor loops (run natively here, under callgrind there).
"""

from __future__ import annotations

import gc
import importlib.util
import json
import pathlib
import pickle
import sys
import types
import typing

import orjson
import pytest

from hikari_shard.bench import recording

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "instructions.py"


@pytest.fixture(scope="module")
def tool() -> typing.Iterator[types.ModuleType]:
    spec = importlib.util.spec_from_file_location("instructions_tool", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up there
    sys.path.insert(0, str(SCRIPT.parent))  # as when it runs as a script: bench_helpers beside it
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.path.remove(str(SCRIPT.parent))
        del sys.modules[spec.name]


def test_marginal_is_the_slope_between_the_two_runs(tool: types.ModuleType) -> None:
    assert tool.marginal((1_006, 3_360_000_000), (5_006, 3_578_000_000)) == 54_500.0


def test_marginal_refuses_runs_in_the_wrong_order(tool: types.ModuleType) -> None:
    with pytest.raises(ValueError, match="more dispatches"):
        tool.marginal((5_006, 2), (1_006, 1))


def test_collected_reads_the_last_total(tool: types.ModuleType) -> None:
    stderr = b"==1== Events    : Ir\n==1== Collected : 4672074357\n==1==\n==1== I   refs: 4,672,074,357\n"
    assert tool.collected(stderr) == 4_672_074_357
    with pytest.raises(ValueError, match="no instruction count"):
        tool.collected(b"valgrind: command not found\n")


def test_build_writes_the_stream_and_one_floor_file_per_compression(
    tool: types.ModuleType, tmp_path: pathlib.Path
) -> None:
    built = tool._build(40, tmp_path)
    events = recording.read_stream(built.path)
    assert events == built.stream.events
    body = events[built.stream.window_start :]
    consumed = sum(name in tool.CONSUMED_IN_SELECTIVE for name, _ in body)
    assert 0 < consumed < len(body)
    assert built.unconsumed_share == 1 - consumed / len(body)
    for compression in tool.COMPRESSIONS:
        with open(tmp_path / f"floor-40-{compression}.pickle", "rb") as file:
            saved_compression, names, messages = pickle.load(file)
        assert saved_compression == compression
        assert names == [name for name, _ in body]
        assert len(messages) == len(body)


def test_skip_loop_runs_hikaris_event_manager(tool: types.ModuleType) -> None:
    tool._run_skip("50")


@pytest.mark.parametrize("compression", ["zlib-stream", "zstd-stream"])
def test_floor_loops_inflate_and_decode_the_whole_stream(
    tool: types.ModuleType, tmp_path: pathlib.Path, compression: str
) -> None:
    if compression == "zstd-stream":
        pytest.importorskip("backports.zstd")
    payloads = [recording.envelope("MESSAGE_CREATE", seq, orjson.dumps({"id": str(seq)})) for seq in range(2, 30)]
    payloads.append(b"not json: the floor must decode every message it claims to")
    from bench_helpers import compress_stream  # beside the script, importable while ``tool`` is

    path = tmp_path / "floor.pickle"
    names = ["MESSAGE_CREATE"] * len(payloads)
    with open(path, "wb") as file:
        pickle.dump((compression, names, compress_stream(compression, payloads)), file)
    tool._run_floor(str(path), "baseline")  # never decodes, so the bad message passes
    for mode in ("full", "selective"):
        with pytest.raises(orjson.JSONDecodeError):
            tool._run_floor(str(path), mode)


def test_refuses_streams_too_short_to_cancel_the_fixed_costs(tool: types.ModuleType) -> None:
    for argv in (["--small", "50", "--large", "150"], ["--small", "1000", "--large", "1500"]):
        with pytest.raises(SystemExit) as refused:
            tool.main(argv)
        assert refused.value.code == 2  # argparse's usage error, before anything runs


# --- the gate: --check, --write-baseline ---------------------------------------------------------


def row(scenario: str, compression: str, client: str, instructions: float, **extra: float) -> dict[str, typing.Any]:
    return {"scenario": scenario, "compression": compression, "client": client, "instructions": instructions, **extra}


def run(*rows: dict[str, typing.Any], small: int = 1000, large: int = 5000) -> dict[str, typing.Any]:
    return {"small": small, "large": large, "rows": list(rows)}


def today() -> dict[str, typing.Any]:
    """Issue 4's figures (zlib-stream), as ``--json`` writes them."""
    return run(
        row("full", "zlib-stream", "hikari", 72_375),
        row("full", "zlib-stream", "compiled", 54_524),
        row("full", "zlib-stream", "pure", 70_000),
        row("full", "zlib-stream", "floor", 49_660, ceiling=72_375 / 49_660),
        row("selective", "zlib-stream", "hikari", 130_826),
        row("selective", "zlib-stream", "compiled", 91_828),
        row("selective", "zlib-stream", "floor", 31_808, hikari_consumed_work=51_856, hikari_skip=8_395),
        row("bot", "zlib-stream", "hikari", 354_590),
        row("bot", "zlib-stream", "compiled", 334_347),
    )


def lines_of(lines: list[typing.Any], kind: str) -> dict[tuple[str, str, str], typing.Any]:
    return {(line.scenario, line.compression, line.client): line for line in lines if line.kind == kind}


def test_check_passes_the_baseline_itself_and_reports_unmet_targets_without_failing(tool: types.ModuleType) -> None:
    lines = tool.check(today(), today())
    growth = lines_of(lines, "growth")
    assert set(growth) == {
        ("full", "zlib-stream", "compiled"),
        ("full", "zlib-stream", "pure"),
        ("selective", "zlib-stream", "compiled"),
        ("bot", "zlib-stream", "compiled"),
    }  # only ours: stock and the floor may move with hikari, valgrind or the corpus
    assert not any(line.fails for line in lines)
    targets = lines_of(lines, "target")
    full = targets[("full", "zlib-stream", "compiled")]
    assert full.limit == pytest.approx(49_660 * 1.04)
    assert not full.met
    assert full.status == f"not met (by {54_524 - 49_660 * 1.04:,.0f})"
    selective = targets[("selective", "zlib-stream", "compiled")]
    assert selective.limit == 31_808 + 51_856 + 3_000
    assert not selective.met
    assert targets[("bot", "zlib-stream", "compiled")].met
    assert targets[("full", "zlib-stream", "pure")].met
    table = tool.check_table(lines)
    assert "targets met: 2 of 4 (not enforced" in table
    assert table.endswith("passed")


def test_check_fails_on_growth_over_three_percent_in_any_row_of_ours(tool: types.ModuleType) -> None:
    baseline = today()
    now = today()
    for line in now["rows"]:
        if line["client"] == "compiled" and line["scenario"] == "selective":
            line["instructions"] = 91_828 * 1.031
        if line["client"] == "compiled" and line["scenario"] == "full":
            line["instructions"] = 54_524 * 1.029  # within the limit
        if line["client"] == "hikari":
            line["instructions"] *= 1.5  # stock is not ours: it may move
    lines = tool.check(now, baseline)
    growth = lines_of(lines, "growth")
    assert growth[("selective", "zlib-stream", "compiled")].fails
    assert growth[("selective", "zlib-stream", "compiled")].status == "BROKEN"
    assert growth[("selective", "zlib-stream", "compiled")].change == pytest.approx(0.031)
    assert not growth[("full", "zlib-stream", "compiled")].fails
    assert [line for line in lines if line.fails] == [growth[("selective", "zlib-stream", "compiled")]]
    table = tool.check_table(lines)
    assert table.endswith("FAILED: 1 row(s) broke the gate")
    (broken,) = [text for text in table.splitlines() if "BROKEN" in text]
    assert broken.split()[:4] == ["growth", "selective", "zlib-stream", "compiled"]


def test_check_fails_on_a_row_the_baseline_lacks(tool: types.ModuleType) -> None:
    baseline = today()
    baseline["rows"] = [r for r in baseline["rows"] if r["client"] != "pure"]
    lines = tool.check(today(), baseline)
    (missing,) = [line for line in lines if line.fails]
    assert (missing.scenario, missing.client, missing.status) == ("full", "pure", "NO BASELINE")


def test_check_refuses_runs_of_other_stream_lengths(tool: types.ModuleType) -> None:
    with pytest.raises(ValueError, match="not comparable"):
        tool.check(run(small=500, large=2500), today())


def test_enforced_targets_fail_when_unmet_and_pass_when_met(tool: types.ModuleType) -> None:
    lines = tool.check(today(), today(), enforce_targets=True)
    failed = {(line.scenario, line.client) for line in lines if line.fails}
    assert failed == {("full", "compiled"), ("selective", "compiled")}
    assert "NOT MET" in tool.check_table(lines)
    at_targets = run(
        row("full", "zstd-stream", "hikari", 60_000),
        row("full", "zstd-stream", "compiled", 42_501 * 1.04),  # exactly at the limit: met
        row("full", "zstd-stream", "pure", 60_000),  # equal to stock: met
        row("full", "zstd-stream", "floor", 42_501),
        row("bot", "zstd-stream", "hikari", 300_000),
        row("bot", "zstd-stream", "compiled", 300_001),  # one above stock: not met
    )
    lines = tool.check(at_targets, at_targets, enforce_targets=True)
    assert [(line.scenario, line.client) for line in lines if line.fails] == [("bot", "compiled")]
    assert "targets met: 2 of 3" in tool.check_table(lines)


def test_write_baseline_replaces_the_rows_it_measured_and_keeps_the_others(tool: types.ModuleType) -> None:
    short = run(
        row("full", "zlib-stream", "hikari", 72_000),
        row("full", "zlib-stream", "compiled", 50_000),
        row("full", "zlib-stream", "floor", 49_000, ceiling=72_000 / 49_000),
    )  # --short: stock, compiled and the floor, whose ceiling the run worked out itself
    merged = tool.merge_baseline(today(), short)
    rows = {(r["scenario"], r["compression"], r["client"]): r for r in merged["rows"]}
    assert rows[("full", "zlib-stream", "compiled")]["instructions"] == 50_000
    assert rows[("full", "zlib-stream", "floor")] == row(
        "full", "zlib-stream", "floor", 49_000, ceiling=72_000 / 49_000
    )
    assert rows[("bot", "zlib-stream", "compiled")]["instructions"] == 334_347
    assert rows[("selective", "zlib-stream", "floor")] == today()["rows"][6]  # not measured: untouched
    assert len(rows) == len(today()["rows"])
    assert tool.merge_baseline(run(small=500, large=2500), short)["rows"] == short["rows"]  # other lengths: replaced


def test_write_baseline_from_a_run_without_hikari_keeps_the_floor_rows_fields(tool: types.ModuleType) -> None:
    """``--client compiled`` measures the floor but not stock: the floor rows lose nothing the baseline had."""
    partial = run(
        row("full", "zlib-stream", "compiled", 52_000),
        row("full", "zlib-stream", "floor", 50_000),  # no ceiling: the run had no stock to divide
        row("selective", "zlib-stream", "compiled", 90_000),
        row("selective", "zlib-stream", "floor", 32_000),  # no hikari_consumed_work / hikari_skip either
    )
    merged = tool.merge_baseline(today(), partial)
    rows = {(r["scenario"], r["compression"], r["client"]): r for r in merged["rows"]}
    assert rows[("full", "zlib-stream", "floor")] == row(
        "full", "zlib-stream", "floor", 50_000, ceiling=72_375 / 50_000
    )  # the new floor under the baseline's stock
    assert rows[("selective", "zlib-stream", "floor")] == row(
        "selective",
        "zlib-stream",
        "floor",
        32_000,
        hikari_consumed_work=51_856,
        hikari_skip=8_395,
        ceiling=130_826 / (32_000 + 51_856),
    )
    assert rows[("full", "zlib-stream", "compiled")]["instructions"] == 52_000
    assert rows[("full", "zlib-stream", "hikari")]["instructions"] == 72_375
    # ... so --check still judges the selective target against the bound (it needs hikari_consumed_work):
    targets = lines_of(tool.check(merged, merged), "target")
    assert targets[("selective", "zlib-stream", "compiled")].limit == 32_000 + 51_856 + 3_000
    # With nothing to keep (no baseline), the run's rows go in as they are.
    assert tool.merge_baseline(None, partial)["rows"] == partial["rows"]


def test_check_and_write_baseline_from_the_command_line(tool: types.ModuleType, tmp_path: pathlib.Path) -> None:
    results = tmp_path / "results.json"
    baseline = tmp_path / "baseline.json"
    results.write_text(json.dumps(today()))
    tool.main(["--results", str(results), "--write-baseline", str(baseline)])
    assert json.loads(baseline.read_text())["rows"] == tool.merge_baseline(None, today())["rows"]
    tool.main(["--results", str(results), "--check", str(baseline)])  # passes: no exit
    grown = today()
    grown["rows"][1]["instructions"] *= 1.05
    results.write_text(json.dumps(grown))
    with pytest.raises(SystemExit) as failed:
        tool.main(["--results", str(results), "--check", str(baseline)])
    assert failed.value.code == 1
    results.write_text(json.dumps(today()))
    with pytest.raises(SystemExit) as failed:
        tool.main(["--results", str(results), "--check", str(baseline), "--enforce-targets"])
    assert failed.value.code == 1


def test_committed_baseline_is_comparable_and_covers_the_short_check(tool: types.ModuleType) -> None:
    baseline = json.loads(tool.DEFAULT_BASELINE.read_text())
    assert (baseline["small"], baseline["large"]) == (1000, 5000)  # the tool's defaults, which the gate uses
    rows = {(r["scenario"], r["compression"], r["client"]): r["instructions"] for r in baseline["rows"]}
    assert all(value > 0 for value in rows.values())
    for client in (*tool.SHORT["client"].split(","), "floor"):  # the developers' check before a commit
        assert (tool.SHORT["scenario"], tool.SHORT["compression"], client) in rows
    lines = tool.check(baseline, baseline)
    assert lines
    assert not any(line.fails for line in lines)
    assert tool.merge_baseline(baseline, baseline)["rows"] == baseline["rows"]  # written by --write-baseline


def test_help_prints_every_option(tool: types.ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    # A literal "%" in a help string breaks argparse's formatting: --help must work.
    with pytest.raises(SystemExit) as exit_info:
        tool.main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "--check" in out
    assert "3%" in out


def test_keep_profiles_creates_its_directory(tool: types.ModuleType, tmp_path: pathlib.Path) -> None:
    """``--keep-profiles DIR`` works with a DIR that does not exist yet (callgrind would not create it)."""
    directory = tmp_path / "new" / "profiles"
    path = pathlib.Path(tool._profile_path(str(directory), ("full", "zlib-stream", "compiled", 1000)))
    assert path == directory / "full-zlib-stream-compiled-1000.out"
    assert directory.is_dir()
    assert tool._profile_path(None, ("full", "zlib-stream", "compiled", 1000)) == "/dev/null"


def test_every_run_hashes_with_the_fixed_seed(tool: types.ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    """A random hash seed moved rows by ~1% from run to run: every process under callgrind gets the same one."""
    seen: list[dict[str, str]] = []

    def run(command: list[str], *, env: dict[str, str], **kwargs: object) -> types.SimpleNamespace:
        seen.append(env)
        return types.SimpleNamespace(returncode=0, stderr=b"==1== Collected : 1234\n")

    monkeypatch.setattr(tool.subprocess, "run", run)
    assert tool._valgrind(["--run-skip", "10"], {"PYTHONHASHSEED": "random", "X": "1"}) == 1234
    assert seen == [{"PYTHONHASHSEED": tool.FIXED_HASH_SEED, "X": "1"}]


def test_measured_processes_freeze_their_imports(tool: types.ModuleType) -> None:
    """What is alive before a run starts is out of the collector's reach: no full collection over it in one run only."""
    try:
        tool._freeze_imports()
        assert gc.get_freeze_count() > 1_000
    finally:
        gc.unfreeze()
