"""Turn the runs into numbers a person reads: medians, spreads, ratios to hikari, a short summary."""

from __future__ import annotations

__all__ = ("CLIENT_LABELS", "environment", "format_report", "summarize")

import contextlib
import importlib.metadata
import os
import pathlib
import platform
import statistics
import sys
import typing

if typing.TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

CLIENT_LABELS: typing.Final = {
    "hikari": "hikari (stock)",
    "compiled": "ours, compiled",
    "pure": "ours, pure",
}
SCENARIO_LABELS: typing.Final = {
    "full": "full decode",
    "bot": "GatewayBot with cache",
    "selective": "selective (no cache, 2 listeners)",
}
_CLIENT_ORDER: typing.Final = {client: index for index, client in enumerate(CLIENT_LABELS)}
"""The order of each group's rows: stock first, then ours compiled, then ours pure."""
_METRICS: typing.Final = ("events_per_s", "mb_per_s", "cpu_us_per_dispatch", "cpu_busy", "peak_rss_mib")
_BUSY_WARNING: typing.Final = 0.9
INSTRUCTION_TOOL: typing.Final = "benchmarks/instructions.py"
"""Where exact ratios come from: instructions per dispatch under callgrind, which do not move between runs."""


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str | None:
    with contextlib.suppress(OSError):
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or None


def environment() -> dict[str, typing.Any]:
    """Describe the machine and the software the numbers come from (no secrets, no paths).

    Returns
    -------
    dict
        Python, hikari, aiohttp, orjson, zlib-ng and zstd versions, hikari-shard's version and hot
        paths, CPU count and model, OS, load average.
    """
    import aiohttp  # noqa: PLC0415
    import hikari  # noqa: PLC0415

    from hikari_shard import __version__, _fast  # noqa: PLC0415

    usable: int | None
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on every OS
        usable = os.cpu_count()
    load = None
    with contextlib.suppress(OSError, AttributeError):
        load = list(os.getloadavg())
    return {
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "hikari": hikari.__version__,
        "aiohttp": aiohttp.__version__,
        "orjson": _version("orjson"),
        "zlib_ng": _version("zlib-ng"),
        "backports_zstd": _version("backports.zstd"),
        "hikari_shard": __version__,
        "implementation": _fast.IMPLEMENTATION,
        "cpu_count": os.cpu_count(),
        "usable_cpus": usable,
        "cpu_model": _cpu_model(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "load_average": load,
    }


def _stats(values: Sequence[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def summarize(runs: Iterable[dict[str, typing.Any]]) -> list[dict[str, typing.Any]]:
    """Aggregate the runs per scenario, compression and client, with ratios to hikari's stock shard.

    Parameters
    ----------
    runs
        The runs, as :func:`hikari_shard.bench.runner.run_bench` returns them.

    Returns
    -------
    list[dict]
        One entry per ``(scenario, compression, client)``, the ``(scenario, compression)`` groups in
        first-seen order and, in each, hikari's stock shard first, then ours compiled, then ours pure
        (then any other client, in first-seen order), whatever order the rounds ran in: ``rounds``, ``failed``,
        ``median``/``min``/``max`` of every metric, and ``speed_vs_hikari`` (events/s ratio) and
        ``cpu_vs_hikari`` (CPU per dispatch ratio) of the medians, and ``cpu_spread``: how far the
        client's CPU per dispatch moved over the rounds (``max / min - 1``; ``None`` with one round).
    """
    groups: dict[tuple[str, str, str], list[dict[str, typing.Any]]] = {}
    for run in runs:
        groups.setdefault((run["scenario"], run["compression"], run["client"]), []).append(run)
    pairs = {pair: index for index, pair in enumerate(dict.fromkeys(key[:2] for key in groups))}
    ordered = sorted(
        groups.items(), key=lambda item: (pairs[item[0][:2]], _CLIENT_ORDER.get(item[0][2], len(_CLIENT_ORDER)))
    )
    summary: list[dict[str, typing.Any]] = []
    for (scenario, compression, client), group in ordered:
        good = [run for run in group if run["ok"]]
        entry: dict[str, typing.Any] = {
            "scenario": scenario,
            "compression": compression,
            "client": client,
            "rounds": len(group),
            "failed": len(group) - len(good),
        }
        for metric in _METRICS:
            entry[metric] = _stats([run[metric] for run in good if run.get(metric) is not None])
        cpu = entry["cpu_us_per_dispatch"]
        entry["cpu_spread"] = cpu["max"] / cpu["min"] - 1 if cpu and len(good) > 1 and cpu["min"] > 0 else None
        skipped = [run["skipped_decodes"] for run in good if run.get("skipped_decodes") is not None]
        entry["skipped_decodes"] = statistics.median(skipped) if skipped else None
        summary.append(entry)
    by_key = {(entry["scenario"], entry["compression"], entry["client"]): entry for entry in summary}
    for entry in summary:
        stock = by_key.get((entry["scenario"], entry["compression"], "hikari"))
        entry["speed_vs_hikari"] = _ratio(entry, stock, "events_per_s")
        entry["cpu_vs_hikari"] = _ratio(entry, stock, "cpu_us_per_dispatch")
    return summary


def _ratio(entry: dict[str, typing.Any], stock: dict[str, typing.Any] | None, metric: str) -> float | None:
    if stock is None or entry[metric] is None or stock[metric] is None or not stock[metric]["median"]:
        return None
    return float(entry[metric]["median"] / stock[metric]["median"])


def _si(value: float) -> str:
    if value >= 100_000:
        return f"{value / 1000:.0f}k"
    if value >= 10_000:
        return f"{value / 1000:.1f}k"
    return f"{value:,.0f}"


def _spread(stats: dict[str, float] | None, fmt: typing.Callable[[float], str], *, spread: bool) -> str:
    if stats is None:
        return "-"
    if not spread or stats["min"] == stats["max"]:
        return fmt(stats["median"])
    return f"{fmt(stats['median'])} [{fmt(stats['min'])}-{fmt(stats['max'])}]"


def _x(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio:.2f}x"


def _table(summary: Sequence[dict[str, typing.Any]], rounds: int) -> list[str]:
    spread = rounds > 1
    header = (
        "scenario",
        "compression",
        "client",
        "events/s" + (" [min-max]" if spread else ""),
        "MB/s",
        "CPU us/dispatch" + (" [min-max]" if spread else ""),
        "peak RSS",
        "speed",
        "CPU",
    )
    rows: list[tuple[str, ...]] = []
    previous: tuple[str, str] | None = None
    for entry in summary:
        key = (entry["scenario"], entry["compression"])
        first = key != previous
        previous = key
        failed = f" ({entry['failed']} failed)" if entry["failed"] else ""
        rss = entry["peak_rss_mib"]
        rows.append(
            (
                entry["scenario"] if first else "",
                entry["compression"] if first else "",
                CLIENT_LABELS.get(entry["client"], entry["client"]) + failed,
                _spread(entry["events_per_s"], _si, spread=spread),
                _spread(entry["mb_per_s"], lambda v: f"{v:.1f}", spread=False),
                _spread(entry["cpu_us_per_dispatch"], lambda v: f"{v:.1f}", spread=spread),
                "-" if rss is None else f"{rss['median']:.0f} MiB",
                _x(entry["speed_vs_hikari"]),
                _x(entry["cpu_vs_hikari"]),
            )
        )
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    right = {3, 4, 5, 6, 7, 8}

    def line(row: Sequence[str]) -> str:
        cells = [cell.rjust(widths[i]) if i in right else cell.ljust(widths[i]) for i, cell in enumerate(row)]
        return "  ".join(cells).rstrip()

    out = [line(header), line(["-" * width for width in widths])]
    previous_scenario = None
    for row, entry in zip(rows, summary, strict=True):
        if previous_scenario is not None and entry["scenario"] != previous_scenario and row[0]:
            out.append("")
        previous_scenario = entry["scenario"]
        out.append(line(row))
    return out


def _headlines(summary: Sequence[dict[str, typing.Any]]) -> list[str]:
    by_key = {(entry["scenario"], entry["compression"], entry["client"]): entry for entry in summary}
    pairs = list(dict.fromkeys((entry["scenario"], entry["compression"]) for entry in summary))
    width = max(
        (len(SCENARIO_LABELS.get(scenario, scenario)) + len(compression) for scenario, compression in pairs), default=0
    )
    lines: list[str] = []
    short: list[str] = []
    for scenario, compression in pairs:
        ours = by_key.get((scenario, compression, "compiled"))
        pure = by_key.get((scenario, compression, "pure"))
        parts: list[str] = []
        if ours is not None and ours["speed_vs_hikari"] is not None:
            speed, cpu = ours["speed_vs_hikari"], _x(ours["cpu_vs_hikari"])
            parts.append(f"ours {speed:.2f}x hikari's events/s, {cpu} its CPU per dispatch")
            short.append(f"{ours['speed_vs_hikari']:.2f}x hikari on {compression} {scenario}")
        if pure is not None and pure["speed_vs_hikari"] is not None:
            parts.append(f"pure twin {pure['speed_vs_hikari']:.2f}x, {_x(pure['cpu_vs_hikari'])}")
        if parts:
            label = f"{SCENARIO_LABELS.get(scenario, scenario)}, {compression}:".ljust(width + 3)
            lines.append(f"  {label} " + "; ".join(parts))
    if short:
        lines.append("In short: ours is " + ", ".join(short) + ".")
    return lines


def _noise_note(summary: Sequence[dict[str, typing.Any]], rounds: int) -> list[str]:
    """How noisy the run was (the spread of CPU per dispatch over rounds), and where exact ratios come from."""
    exact = (
        f"For exact ratios, count instructions instead: {INSTRUCTION_TOOL} (callgrind; docs/performance.md,"
        ' "How close to the floor").'
    )
    spreads = [entry for entry in summary if entry.get("cpu_spread") is not None]
    if not spreads:
        return [
            f"Noise: not measured ({rounds} round{'s' if rounds != 1 else ''}; --rounds 3 or more shows it). {exact}"
        ]
    spreads.sort(key=lambda entry: entry["cpu_spread"])
    widest = spreads[-1]
    values = [entry["cpu_spread"] for entry in spreads]
    where = f"{CLIENT_LABELS.get(widest['client'], widest['client'])}, {widest['scenario']}, {widest['compression']}"
    return [
        (
            f"Noise: each client's CPU per dispatch moved by {min(values):.0%} to {max(values):.0%} over the {rounds}"
            f" rounds (max/min - 1; median {statistics.median(values):.0%}; widest: {where}). Ratios closer to 1"
            " than that are within this machine's noise."
        ),
        exact,
    ]


def _busy_note(runs: Sequence[dict[str, typing.Any]], cpus: int | None) -> list[str]:
    good = [run for run in runs if run["ok"] and run.get("cpu_busy") is not None]
    if not good:
        return ["client CPU-bound check: no successful run"]
    busy = [run["cpu_busy"] for run in good]
    machine = [run["machine_busy"] for run in good if run.get("machine_busy") is not None]
    lines = [f"client CPU busy over the window: median {statistics.median(busy):.0%}, lowest {min(busy):.0%}"]
    if machine:
        lines[0] += f"; the whole machine ({cpus or '?'} CPUs) meanwhile: median {statistics.median(machine):.0%} busy"
    gateway = [run["gateway_cpu_s"] for run in good if run.get("gateway_cpu_s") is not None]
    clients = [run["process_cpu_s"] for run in good if run.get("process_cpu_s") is not None]
    if gateway and clients:
        lines.append(
            f"gateway process CPU per run (connection, READY, preparing and writing the stream): median "
            f"{statistics.median(gateway) * 1000:.0f} ms, vs {statistics.median(clients) * 1000:.0f} ms for the "
            "client process."
        )
    low = [run for run in good if run["cpu_busy"] < _BUSY_WARNING]
    if not low:
        lines.append("every client was CPU-bound: the gateway process kept up.")
        return lines
    waited = [run for run in low if run.get("machine_busy") is not None and run["machine_busy"] < _BUSY_WARNING]
    crowded = [run for run in low if run.get("machine_busy") is not None and run["machine_busy"] >= _BUSY_WARNING]
    if crowded:
        lines.append(
            f"{len(crowded)} run(s) shared a saturated machine (other processes ran while the client was ready): "
            "their events/s are lowered by that load; CPU per dispatch is the steadier comparison."
        )
    if waited:
        lines.append(
            f"{len(waited)} run(s) waited for data with CPU to spare: the gateway process (or the socket) limited them."
        )
    if not machine:
        lines.append(f"{len(low)} run(s) were below {_BUSY_WARNING:.0%} busy (no machine-wide figures on this OS).")
    return lines


def format_report(document: dict[str, typing.Any]) -> str:
    """Format the side-by-side table and the short summary.

    Parameters
    ----------
    document
        The ``--json`` document (``environment``, ``config``, ``stream``, ``runs``, ``summary``).

    Returns
    -------
    str
        The text to print.
    """
    env = document["environment"]
    config = document["config"]
    stream = document["stream"]
    summary = document["summary"]
    rounds = config["rounds"]
    out = [
        (
            f"hikari-shard bench: {stream['window_events']:,} dispatches timed per run ({stream['source']}, "
            f"{stream['mean_dispatch_bytes']:.0f} B of JSON each on average, after {stream['setup_dispatches']} "
            f"GUILD_CREATEs), {rounds} round{'s' if rounds != 1 else ''}"
        ),
        (
            f"Python {env['python']}, hikari {env['hikari']}, aiohttp {env['aiohttp']}, orjson {env['orjson']}, "
            f"{env['usable_cpus']} CPUs ({env['cpu_model'] or env['machine']})"
        ),
        "",
        *_table(summary, rounds),
        "",
        (
            "events/s and MB/s: wall clock from the first to the last timed dispatch; CPU: the client process's CPU "
            "time per dispatch; speed: events/s vs hikari's; CPU: CPU per dispatch vs hikari's (lower is better)."
        ),
    ]
    for name, why in document.get("skipped_clients", {}).items():
        out.append(f"skipped client {name}: {why}")
    failed = [run for run in document["runs"] if not run["ok"]]
    for run in failed:
        out.append(
            f"FAILED: {run['scenario']} {run['compression']} {run['client']} round {run['round']}: {run['error']}"
        )
    out += _busy_note(document["runs"], env.get("usable_cpus"))
    prepare = [entry["prepare_s"] for entry in document.get("server", []) if "prepare_s" in entry]
    if prepare:
        out.append(
            f"gateway: each stream encoded and compressed before its first byte was sent "
            f"(median {statistics.median(prepare) * 1000:.0f} ms, not timed)."
        )
    headlines = _headlines(summary)
    if headlines:
        out += ["", "Summary (median events/s, ours vs hikari's stock shard, same stream):", *headlines]
    out += _noise_note(summary, rounds)
    return "\n".join(out)
