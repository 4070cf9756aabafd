"""``hikari-shard bench`` runs, delivers every event to every client, and never replays a token.

If the smoke run fails, CI's benchmark step and ``./dev test`` fail with it, and the numbers in the
README could come from runs that lost events.  If the recording checks fail, a user could stream
(and share the results of) a recording that holds their bot token.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import typing
import zlib

import orjson
import pytest

import hikari_shard
from hikari_shard.bench import cli, recording, report
from hikari_shard.testing import corpus, make_bot_token

REQUIRE_EXTENSIONS = os.environ.get("HIKARI_SHARD_REQUIRE_EXTENSIONS", "") not in {"", "0"}
PACKAGE_ROOT = str(pathlib.Path(hikari_shard.__file__).resolve().parents[1])
SMOKE_TIMEOUT = 240


def _bench(*args: str, timeout: float = SMOKE_TIMEOUT) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = PACKAGE_ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return subprocess.run(  # noqa: PLW1510 - the caller checks the status
        [sys.executable, "-m", "hikari_shard", "bench", "--no-progress", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def _write_lines(path: pathlib.Path, payloads: typing.Iterable[dict[str, typing.Any]]) -> None:
    path.write_bytes(b"".join(orjson.dumps(payload) + b"\n" for payload in payloads))


def _small_corpus(dispatches: int = 300) -> corpus.Corpus:
    return corpus.build_corpus(seed=3, dispatches=dispatches, guilds=2, guild_members=40)


# -- the smoke run (what CI runs) -------------------------------------------------------------------


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> dict[str, typing.Any]:
    out = tmp_path_factory.mktemp("bench") / "out.json"
    result = _bench("--smoke", "--json", str(out))
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    document: dict[str, typing.Any] = orjson.loads(out.read_bytes())
    document["_stdout"] = result.stdout
    return document


def test_smoke_json_has_the_environment_config_and_summary(smoke: dict[str, typing.Any]) -> None:
    env = smoke["environment"]
    for key in ("python", "hikari", "aiohttp", "implementation", "cpu_count", "hikari_shard"):
        assert env[key], key
    assert smoke["config"]["smoke"] is True
    assert smoke["config"]["rounds"] == 1
    # one compression per scenario, in turn: every scenario and every compression runs
    combos = smoke["config"]["combos"]
    assert {scenario for scenario, _ in combos} == {"full", "bot", "selective"}
    assert {compression for _, compression in combos} == {"zlib-stream", "zstd-stream", "none"}
    assert smoke["stream"]["window_events"] >= 2_000
    assert smoke["summary"]
    for entry in smoke["summary"]:
        assert entry["events_per_s"]["median"] > 0
        assert entry["cpu_us_per_dispatch"]["median"] > 0
        assert entry["peak_rss_mib"]["median"] > 0
    assert "In short: ours is" in smoke["_stdout"]
    assert "Noise: not measured (1 round;" in smoke["_stdout"]  # one round: no spread to state
    assert report.INSTRUCTION_TOOL in smoke["_stdout"]


def test_smoke_every_run_delivered_every_event(smoke: dict[str, typing.Any]) -> None:
    clients = {"hikari", "compiled", "pure"}
    if not REQUIRE_EXTENSIONS:
        clients -= set(smoke["skipped_clients"])
    else:
        assert not smoke["skipped_clients"]
    runs = smoke["runs"]
    assert {run["client"] for run in runs} == clients
    assert len(runs) == len(smoke["config"]["combos"]) * len(clients)
    stream = smoke["stream"]
    for run in runs:
        where = f"{run['scenario']} {run['compression']} {run['client']}"
        assert run["ok"], f"{where}: {run['error']}"
        assert run["delivered"], where
        assert run["final_seq"] == run["expected_seq"] == stream["dispatches"] + 1, where
        assert run["window_events"] == stream["window_events"], where
        if run["scenario"] == "full":
            assert run["counted"] == stream["dispatches"] + 1, where  # READY, then every dispatch
        if run["scenario"] == "selective" and run["client"] == "compiled":
            assert run["skipped_decodes"] > 0, where  # selective decode (compiled only) skipped something
    hot_paths = {run["client"]: run["shard_class"] for run in runs}
    assert hot_paths["hikari"] == "hikari.impl.shard.GatewayShardImpl"
    assert all(value == "hikari_shard.shard.GatewayShardImpl" for key, value in hot_paths.items() if key != "hikari")


def test_the_token_never_reaches_the_output(smoke: dict[str, typing.Any]) -> None:
    text = orjson.dumps(smoke).decode()
    assert not recording.BOT_TOKEN_PATTERN.search(text.encode())


# -- --replay ---------------------------------------------------------------------------------------


def test_replay_refuses_a_recording_with_a_token_shaped_string(tmp_path: pathlib.Path) -> None:
    token = make_bot_token()
    path = tmp_path / "leaky.jsonl"
    events = list(_small_corpus(50).dispatches)
    name, data = next((name, data) for name, data in events if name == "MESSAGE_CREATE")
    leaked = dict(data, content=f"oops my token is {token}")
    _write_lines(path, [{"op": 0, "t": name, "s": 2, "d": leaked}])

    result = _bench("--replay", str(path), "--smoke", timeout=60)

    assert result.returncode == 2
    assert "refusing to replay" in result.stderr
    assert "bot token" in result.stderr
    assert token not in result.stderr + result.stdout


def test_replay_refuses_a_recording_with_a_token_key(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "identify.jsonl"
    _write_lines(
        path,
        [
            {"op": 2, "d": {"token": "not-shaped-like-one", "intents": 513, "properties": {}}},
            *(
                {"op": 0, "t": name, "s": seq, "d": data}
                for seq, (name, data) in enumerate(_small_corpus(20).dispatches)
            ),
        ],
    )
    with pytest.raises(recording.TokenInRecordingError, match=r'payload 1 has a "token" key at d\.token') as info:
        recording.read_recording(path)
    assert "not-shaped-like-one" not in str(info.value)


def test_an_interaction_token_is_not_a_bot_token() -> None:
    interaction = {"op": 0, "t": "INTERACTION_CREATE", "s": 5, "d": {"id": "1", "token": "aW50ZXJhY3Rpb246MTIz"}}
    recording.check_no_token([orjson.dumps(interaction)])
    nested = {"op": 0, "t": "MESSAGE_CREATE", "s": 6, "d": {"embeds": [{"token": "x"}]}}
    with pytest.raises(recording.TokenInRecordingError, match=r"d\.embeds\[0\]\.token"):
        recording.check_no_token([orjson.dumps(nested)])


def test_replay_streams_a_clean_recording(tmp_path: pathlib.Path) -> None:
    generated = _small_corpus()
    path = tmp_path / "clean.jsonl"
    _write_lines(
        path,
        [
            {"t": None, "s": None, "op": 10, "d": {"heartbeat_interval": 41250}},  # skipped: not a dispatch
            {"op": 0, "t": "READY", "s": 1, "d": generated.ready},  # skipped: the emulator sends its own
            *(
                {"op": 0, "t": name, "s": seq, "d": data}
                for seq, (name, data) in enumerate(list(generated.events())[1:], 2)
            ),
        ],
    )
    out = tmp_path / "replay.json"

    result = _bench(
        "--replay", str(path), "--smoke", "--scenario", "full", "--compression", "zlib-stream", "--json", str(out)
    )

    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    document = orjson.loads(out.read_bytes())
    assert document["stream"]["source"] == "replay of clean.jsonl"
    assert document["stream"]["setup_dispatches"] == len(generated.guild_creates)
    # both marks around the recorded dispatch stream
    assert document["stream"]["dispatches"] == len(generated.guild_creates) + len(generated.dispatches) + 2
    assert document["runs"]
    assert all(run["ok"] and run["delivered"] for run in document["runs"])


# -- the file formats -------------------------------------------------------------------------------


def test_stream_file_round_trip(tmp_path: pathlib.Path) -> None:
    generated = _small_corpus()
    events = list(generated.events())
    path = tmp_path / "stream.jsonl"

    assert recording.write_stream(path, events) == len(events)

    lines = path.read_bytes().splitlines()
    first = orjson.loads(lines[0])
    assert first == {"t": "READY", "s": 2, "op": 0, "d": generated.ready}
    assert [orjson.loads(line)["s"] for line in lines] == list(range(2, len(events) + 2))
    assert recording.read_stream(path) == [(name, orjson.dumps(data)) for name, data in events]
    # the --replay reader gives back the same dispatches, without READY
    assert recording.read_recording(path) == events[1:]


def test_raw_zlib_stream_recording_round_trip(tmp_path: pathlib.Path) -> None:
    generated = _small_corpus()
    payloads = [
        {"t": None, "s": None, "op": 10, "d": {"heartbeat_interval": 41250}},
        *({"op": 0, "t": name, "s": seq, "d": data} for seq, (name, data) in enumerate(generated.events(), 1)),
    ]
    deflater = zlib.compressobj()
    raw = b"".join(deflater.compress(orjson.dumps(payload)) + deflater.flush(zlib.Z_SYNC_FLUSH) for payload in payloads)
    path = tmp_path / "connection.zlib"
    path.write_bytes(raw)

    assert recording.read_recording(path) == list(generated.events())[1:]


def test_a_file_in_neither_format_is_refused_clearly(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    with pytest.raises(recording.RecordingError, match="expected JSON lines"):
        recording.read_recording(path)
    truncated = tmp_path / "cut.zlib"
    truncated.write_bytes(zlib.compress(b'{"op":0,"t":"X","s":1,"d":{}}')[:-8])
    with pytest.raises(recording.RecordingError):
        recording.read_recording(truncated)


def test_help_explains_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    for option in ("--scenario", "--compression", "--client", "--events", "--rounds", "--seed", "--replay", "--json"):
        assert option in text
    for word in ("--smoke", "zlib-stream", "JSON lines", "selective", "token"):
        assert word in text


# -- the summary's noise note -------------------------------------------------------------------------


def _fake_run(client: str, round_: int, cpu_us: float) -> dict[str, typing.Any]:
    return {
        "scenario": "full",
        "compression": "zlib-stream",
        "client": client,
        "round": round_,
        "ok": True,
        "events_per_s": 1e6 / cpu_us,
        "mb_per_s": 1.0,
        "cpu_us_per_dispatch": cpu_us,
        "cpu_busy": 1.0,
        "peak_rss_mib": 60.0,
    }


def _fake_document(runs: list[dict[str, typing.Any]], rounds: int) -> dict[str, typing.Any]:
    return {
        "environment": {
            **dict.fromkeys(("python", "hikari", "aiohttp", "orjson", "machine"), "x"),
            "usable_cpus": 2,
            "cpu_model": None,
        },
        "config": {"rounds": rounds},
        "stream": {"window_events": 1000, "source": "corpus", "mean_dispatch_bytes": 873, "setup_dispatches": 2},
        "runs": runs,
        "summary": report.summarize(runs),
    }


def test_summary_states_the_spread_over_rounds_and_points_to_the_instruction_tool() -> None:
    runs = [
        *(_fake_run("hikari", n, cpu) for n, cpu in enumerate((20.0, 30.0, 25.0))),  # moved by 50%
        *(_fake_run("compiled", n, cpu) for n, cpu in enumerate((10.0, 11.0, 10.5))),  # by 10%
    ]
    document = _fake_document(runs, rounds=3)
    spreads = {entry["client"]: entry["cpu_spread"] for entry in document["summary"]}
    assert spreads == {"hikari": pytest.approx(0.5), "compiled": pytest.approx(0.1)}
    text = report.format_report(document)
    (noise,) = [line for line in text.splitlines() if line.startswith("Noise:")]
    assert "moved by 10% to 50% over the 3 rounds" in noise
    assert "median 30%" in noise
    assert "widest: hikari (stock), full, zlib-stream" in noise
    assert "benchmarks/instructions.py" in text


def test_one_round_has_no_spread_to_state() -> None:
    document = _fake_document([_fake_run("hikari", 0, 20.0), _fake_run("compiled", 0, 10.0)], rounds=1)
    assert all(entry["cpu_spread"] is None for entry in document["summary"])
    text = report.format_report(document)
    assert "Noise: not measured (1 round; --rounds 3 or more shows it)" in text


# -- the order of the rows ------------------------------------------------------------------------


def test_each_group_prints_stock_then_compiled_then_pure_whatever_order_the_rounds_ran_in() -> None:
    def ran(scenario: str, compression: str, client: str, round_: int) -> dict[str, typing.Any]:
        return {**_fake_run(client, round_, 10.0), "scenario": scenario, "compression": compression}

    runs = [  # rounds shuffle the clients, so hikari's first round can come after ours
        ran("full", "zstd-stream", "pure", 0),
        ran("full", "zstd-stream", "compiled", 0),
        ran("full", "zstd-stream", "hikari", 0),
        ran("full", "zlib-stream", "compiled", 0),
        ran("full", "zlib-stream", "hikari", 0),
        ran("full", "zstd-stream", "hikari", 1),
        ran("selective", "zlib-stream", "pure", 0),
        ran("selective", "zlib-stream", "hikari", 0),
        ran("full", "zlib-stream", "pure", 0),
    ]
    document = _fake_document(runs, rounds=2)
    order = [(entry["scenario"], entry["compression"], entry["client"]) for entry in document["summary"]]
    assert order == [
        ("full", "zstd-stream", "hikari"),
        ("full", "zstd-stream", "compiled"),
        ("full", "zstd-stream", "pure"),
        ("full", "zlib-stream", "hikari"),
        ("full", "zlib-stream", "compiled"),
        ("full", "zlib-stream", "pure"),
        ("selective", "zlib-stream", "hikari"),
        ("selective", "zlib-stream", "pure"),
    ]
    assert document["summary"][0]["rounds"] == 2
    table = report.format_report(document).splitlines()
    labels = ["hikari (stock)", "ours, compiled", "ours, pure"]
    printed = [next(label for label in labels if label in line) for line in table if any(x in line for x in labels)]
    assert printed[:8] == [labels[0], labels[1], labels[2], labels[0], labels[1], labels[2], labels[0], labels[2]]
