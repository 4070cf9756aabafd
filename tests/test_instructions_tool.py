"""``benchmarks/instructions.py``: the arithmetic and the floor loops behind its instruction counts.

The script itself needs valgrind and minutes of CPU, so CI does not run it; these tests keep the
parts that decide its figures honest: the marginal cost, reading callgrind's total, the stream
and floor files it builds, and the floor loops (run natively here, under callgrind there).
"""

from __future__ import annotations

import importlib.util
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
