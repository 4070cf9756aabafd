"""The CI workflows and the wheel-build config keep their promises.

GitHub Actions cannot run here, so these tests read ``.github/workflows/*.yml`` and
``pyproject.toml`` and check what a user of the project would notice if it broke: a Python
version without wheels or without tests, a no-extensions leg that vanished, a wheel build whose
tests could pass on the pure-Python fallback, a release that publishes before every wheel is
built, or a benchmark job that no longer fails on a regression.

PyYAML reads the ``on:`` key as the boolean ``True`` (YAML 1.1), hence :func:`triggers`.
"""

from __future__ import annotations

import fnmatch
import itertools
import os
import pathlib
import re
import tomllib
import typing

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"
PYPROJECT = ROOT / "pyproject.toml"

PYTHONS = ("3.11", "3.12", "3.13", "3.14")
CPYTHON_TAGS = tuple("cp" + v.replace(".", "") for v in PYTHONS)
# cibuildwheel platform -> (architectures we ship, identifier suffix per architecture)
PLATFORM_ARCHS: dict[str, dict[str, str]] = {
    "linux": {"x86_64": "manylinux_x86_64", "aarch64": "manylinux_aarch64"},
    "macos": {"x86_64": "macosx_x86_64", "arm64": "macosx_arm64"},
    "windows": {"AMD64": "win_amd64"},
}
REQUIRE = "HIKARI_SHARD_REQUIRE_EXTENSIONS"

if not WORKFLOWS.is_dir() and not (ROOT / ".git").exists():
    # e.g. the tests unpacked from an sdist, which carries no .github/
    pytestmark = pytest.mark.skip(reason="not a repository checkout: no .github/workflows to check")

Job = dict[str, typing.Any]
Step = dict[str, typing.Any]


def load(name: str) -> dict[str, typing.Any]:
    path = WORKFLOWS / name
    assert path.is_file(), f"{path} is missing"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{name} is not a YAML mapping"
    return data


def triggers(workflow: dict[str, typing.Any]) -> dict[str, typing.Any]:
    on = workflow.get("on", workflow.get(True))
    assert on is not None, "workflow has no `on:` triggers"
    if isinstance(on, str):
        return {on: None}
    if isinstance(on, list):
        return dict.fromkeys(on)
    return dict(on)


def steps(job: Job) -> list[Step]:
    return list(job.get("steps") or [])


def runs(job: Job) -> str:
    """Every ``run:`` script of a job, joined."""
    return "\n".join(str(step["run"]) for step in steps(job) if "run" in step)


def uses(job: Job, action: str) -> list[Step]:
    return [step for step in steps(job) if str(step.get("uses", "")).split("@")[0] == action]


def expand_matrix(matrix: dict[str, typing.Any]) -> list[dict[str, typing.Any]]:
    """The job combinations GitHub makes of ``strategy.matrix`` (product, exclude, then include)."""
    base = {k: v for k, v in matrix.items() if k not in {"include", "exclude"}}
    combos = [dict(zip(base, values, strict=True)) for values in itertools.product(*base.values())] if base else []
    for exclude in matrix.get("exclude") or []:
        combos = [c for c in combos if any(c.get(k) != v for k, v in exclude.items())]
    originals = len(combos)
    for include in matrix.get("include") or []:
        matched = False
        for combo in combos[:originals]:
            if all(combo[k] == v for k, v in include.items() if k in base):
                combo.update(include)
                matched = True
        if not matched:
            combos.append(dict(include))
    return combos


# --------------------------------------------------------------------------------------------
# instructions.yml


def test_instructions_counts_on_main_with_valgrind_and_keeps_the_json() -> None:
    workflow = load("instructions.yml")
    assert "main" in triggers(workflow)["push"]["branches"]
    (job,) = workflow["jobs"].values()
    script = runs(job)
    assert "apt-get install" in script
    assert "valgrind" in script
    match = re.search(r"benchmarks/instructions\.py .*--json (\S+)", script.replace("\\\n", " "))
    assert match, "the script's results are not written to a file"
    uploads = uses(job, "actions/upload-artifact")
    assert uploads
    assert match.group(1) in str(uploads[0]["with"]["path"])


def test_instructions_is_a_gate_against_the_committed_baseline() -> None:
    """Pull requests and main run ``--check``; a failed check fails the job, on every row of ours."""
    workflow = load("instructions.yml")
    on = triggers(workflow)
    assert "pull_request" in on
    assert "main" in on["push"]["branches"]
    (job,) = workflow["jobs"].values()
    (step,) = [s for s in steps(job) if "benchmarks/instructions.py" in str(s.get("run", ""))]
    assert not step.get("continue-on-error"), "the check must fail the job"
    script = str(step["run"]).replace("\\\n", " ")
    assert "set -o pipefail" in script, "piped through tee, the check's exit status would be lost"
    command = re.search(r"benchmarks/instructions\.py (.*)", script)
    assert command
    argv = command.group(1).split()
    baseline = argv[argv.index("--check") + 1]
    assert (ROOT / baseline).is_file(), f"the gate checks against {baseline}, which is not committed"
    assert set(argv[argv.index("--scenario") + 1].split(",")) == {"full", "selective", "bot"}
    assert {"compiled", "pure"} <= set(argv[argv.index("--client") + 1].split(","))
    assert "--compression" not in argv  # both compressions
    assert "--small" not in argv
    assert "--large" not in argv  # the stream lengths the baseline was written with


def pyproject() -> dict[str, typing.Any]:
    return tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))


# --------------------------------------------------------------------------------------------
# All workflows


@pytest.mark.parametrize("name", ["ci.yml", "wheels.yml", "bench.yml", "instructions.yml"])
def test_workflow_is_well_formed(name: str) -> None:
    workflow = load(name)
    assert workflow.get("name"), f"{name}: no name"
    assert triggers(workflow), f"{name}: no triggers"
    jobs = workflow.get("jobs")
    assert isinstance(jobs, dict)
    assert jobs, f"{name}: no jobs"
    for job_id, job in jobs.items():
        assert "runs-on" in job, f"{name}:{job_id} has no runs-on"
        assert steps(job), f"{name}:{job_id} has no steps"
        for step in steps(job):
            assert ("uses" in step) != ("run" in step), f"{name}:{job_id}: a step needs exactly one of uses/run: {step}"
            if "uses" in step:
                action, _, ref = str(step["uses"]).partition("@")
                assert "/" in action, f"{name}:{job_id}: {step['uses']!r} is not owner/repo@ref"
                assert ref, f"{name}:{job_id}: {action} is not pinned to a version"
                assert ref not in {"main", "master", "latest"}, f"{name}:{job_id}: {action}@{ref} floats"


@pytest.mark.parametrize("name", ["ci.yml", "wheels.yml", "bench.yml", "instructions.yml"])
def test_workflow_token_is_read_only_by_default(name: str) -> None:
    """The default GITHUB_TOKEN only reads; a job that needs more asks for it itself."""
    permissions = load(name).get("permissions")
    assert isinstance(permissions, dict), f"{name}: set top-level `permissions:` explicitly"
    assert permissions.get("contents") == "read"
    assert "write" not in permissions.values(), f"{name}: write permissions at the top level: {permissions}"


def test_scripts_the_workflows_run_exist() -> None:
    text = "\n".join(p.read_text(encoding="utf-8") for p in WORKFLOWS.glob("*.yml"))
    for script in sorted(set(re.findall(r"(?<![\w/.])\./(dev|scripts/[\w.-]+)\b", text))):
        path = ROOT / script
        assert path.is_file(), f"a workflow runs ./{script}, which does not exist"
        assert os.access(path, os.X_OK), f"./{script} is not executable (chmod +x, and commit the mode)"


# --------------------------------------------------------------------------------------------
# ci.yml: tests on 3.11-3.14, both implementations, macOS and Windows, lint


def ci_test_job() -> Job:
    jobs = load("ci.yml")["jobs"]
    assert "test" in jobs, "ci.yml has no `test` job"
    return typing.cast("Job", jobs["test"])


def ci_combinations() -> list[dict[str, typing.Any]]:
    return expand_matrix(ci_test_job()["strategy"]["matrix"])


def test_ci_runs_on_pushes_and_pull_requests() -> None:
    on = triggers(load("ci.yml"))
    assert "push" in on
    assert "pull_request" in on


def test_ci_tests_every_python_with_and_without_extensions_on_linux() -> None:
    combos = ci_combinations()
    linux = {(c["python"], c["no-extensions"]) for c in combos if str(c["os"]).startswith("ubuntu")}
    for python in PYTHONS:
        assert (python, "") in linux, f"no compiled Linux leg for Python {python}"
        assert (python, "1") in linux, f"no HIKARI_SHARD_NO_EXTENSIONS=1 Linux leg for Python {python}"


def test_ci_has_a_macos_and_a_windows_leg() -> None:
    oses = {str(c["os"]).split("-")[0] for c in ci_combinations()}
    assert {"ubuntu", "macos", "windows"} <= oses


def test_ci_matrix_drives_the_implementation_switches() -> None:
    env = ci_test_job().get("env") or {}
    assert "matrix.no-extensions" in str(env.get("HIKARI_SHARD_NO_EXTENSIONS")), env
    # compiled legs must fail (not fall back to pure) when the extensions do not load
    assert "matrix.no-extensions" in str(env.get(REQUIRE)), env
    assert {c["no-extensions"] for c in ci_combinations()} == {"", "1"}


def test_ci_runs_the_dev_test_commands() -> None:
    """The same commands as ./dev test (Windows: pip and pytest directly)."""
    dev = (ROOT / "dev").read_text(encoding="utf-8")
    jobs = load("ci.yml")["jobs"]
    test = runs(jobs["test"])
    assert "./dev build" in test
    assert "-m pytest -p no:cacheprovider" in test
    assert "-m pytest -p no:cacheprovider" in dev
    assert 'pip install ".[test,zstd]"' in test, "the Windows leg must install the same extras as ./dev"
    assert '".[test,zstd]"' in dev
    assert any("./dev test" in runs(job) for job in jobs.values()), "no job runs ./dev test itself"


def test_ci_lints_like_dev_test() -> None:
    dev = (ROOT / "dev").read_text(encoding="utf-8")
    lint = runs(load("ci.yml")["jobs"]["lint"])
    for tool in ("ruff check", "ruff format --check", "mypy"):
        assert tool in dev, f"./dev test no longer runs {tool}: update ci.yml's lint job"
        assert tool in lint, f"ci.yml's lint job does not run {tool}"


def test_ci_python_versions_match_the_classifiers() -> None:
    classifiers = pyproject()["project"]["classifiers"]
    pattern = r"Programming Language :: Python :: 3\.\d+"
    declared = {c.rsplit(" :: ", 1)[1] for c in classifiers if re.fullmatch(pattern, c)}
    assert declared == set(PYTHONS)
    assert set(ci_test_job()["strategy"]["matrix"]["python"]) == set(PYTHONS)
    assert pyproject()["project"]["requires-python"] == f">={PYTHONS[0]}"


LOWEST_CONSTRAINTS = ROOT / ".github" / "lowest-constraints.txt"


def _lower_bounds() -> dict[str, str]:
    """``name -> lowest version`` for every dependency (and the zstd extra) pyproject.toml declares."""
    project = pyproject()["project"]
    bounds = {}
    for requirement in [*project["dependencies"], *project["optional-dependencies"]["zstd"]]:
        match = re.match(r"([A-Za-z0-9_.-]+)\s*>=\s*([0-9][0-9.]*)", requirement)
        assert match, f"{requirement!r} declares no lower bound"
        bounds[match.group(1).lower()] = match.group(2)
    return bounds


def _pinned() -> dict[str, str]:
    pins = {}
    for raw in LOWEST_CONSTRAINTS.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==")
            pins[name.strip().lower()] = version.strip()
    return pins


def _same_version(a: str, b: str) -> bool:
    def parts(v: str) -> list[int]:
        numbers = [int(x) for x in v.split(".")]
        return numbers + [0] * (3 - len(numbers))

    return parts(a) == parts(b)


def test_lowest_constraints_are_the_declared_lower_bounds() -> None:
    bounds, pins = _lower_bounds(), _pinned()
    assert set(pins) == set(bounds), (pins, bounds)
    for name, version in bounds.items():
        assert _same_version(pins[name], version), f"{name}: pinned {pins[name]}, declared >={version}"


def test_hikari_is_capped_to_the_minor_version_whose_internals_we_read() -> None:
    (hikari,) = [r for r in pyproject()["project"]["dependencies"] if r.startswith("hikari")]
    assert hikari.replace(" ", "") == "hikari>=2.7,<2.8"


def test_ci_tests_the_lowest_declared_versions_on_both_implementations() -> None:
    jobs = load("ci.yml")["jobs"]
    assert "lowest" in jobs, "ci.yml has no `lowest` job"
    job = jobs["lowest"]
    text = runs(job)
    assert 'pip install -c .github/lowest-constraints.txt ".[test,zstd]"' in text
    pythons = [step["with"]["python-version"] for step in uses(job, "actions/setup-python")]
    assert pythons == [PYTHONS[0]], "the lowest versions run on the lowest Python"
    legs = [step for step in job["steps"] if "-m pytest -p no:cacheprovider" in str(step.get("run", ""))]
    envs = [step.get("env") or {} for step in legs]
    assert any(env.get(REQUIRE) == "1" for env in envs), "no compiled leg (extensions required) on the lowest versions"
    assert any(env.get("HIKARI_SHARD_NO_EXTENSIONS") == "1" for env in envs), "no pure leg on the lowest versions"


# --------------------------------------------------------------------------------------------
# wheels.yml + [tool.cibuildwheel]


def wheels_jobs() -> dict[str, Job]:
    return typing.cast("dict[str, Job]", load("wheels.yml")["jobs"])


def cibuildwheel_job() -> tuple[str, Job, Step]:
    found = [(job_id, job, step) for job_id, job in wheels_jobs().items() for step in uses(job, "pypa/cibuildwheel")]
    assert len(found) == 1, "wheels.yml needs exactly one pypa/cibuildwheel step"
    return found[0]


def test_cibuildwheel_action_is_pinned_to_a_release() -> None:
    """cibuildwheel has vX.Y and vX.Y.Z tags but deliberately no bare major tag: `@v4` would not resolve."""
    _, _, step = cibuildwheel_job()
    ref = str(step["uses"]).partition("@")[2]
    assert re.fullmatch(r"v\d+\.\d+(\.\d+)?|[0-9a-f]{40}", ref), f"pin pypa/cibuildwheel to vX.Y or vX.Y.Z, not {ref!r}"


def test_wheels_are_built_for_every_platform_and_architecture() -> None:
    _, job, step = cibuildwheel_job()
    combos = expand_matrix(job["strategy"]["matrix"])
    archs_env = str((step.get("env") or {}).get("CIBW_ARCHS", ""))
    assert "matrix.arch" in archs_env, "each runner must build the architecture its matrix entry names"
    built: set[tuple[str, str]] = set()
    for combo in combos:
        runner = str(combo["os"])
        platform = next(p for p in ("ubuntu", "macos", "windows") if runner.startswith(p))
        built.add(({"ubuntu": "linux"}.get(platform, platform), combo["arch"]))
        if combo["arch"] == "aarch64" and "arm" not in runner:
            assert uses(job, "docker/setup-qemu-action"), "aarch64 on an x86_64 runner needs QEMU"
    wanted = {(platform, arch) for platform, archs in PLATFORM_ARCHS.items() for arch in archs}
    assert wanted <= built, f"no wheels for {sorted(wanted - built)}"


def test_cibuildwheel_selects_cpython_311_to_314_everywhere() -> None:
    config = pyproject()["tool"]["cibuildwheel"]
    _, _, step = cibuildwheel_job()
    env = step.get("env") or {}
    build = str(env.get("CIBW_BUILD", config.get("build", "*"))).split()
    skip = str(env.get("CIBW_SKIP", config.get("skip", ""))).split()
    for tag in CPYTHON_TAGS:
        for platform, archs in PLATFORM_ARCHS.items():
            for suffix in archs.values():
                identifier = f"{tag}-{suffix}"
                assert any(fnmatch.fnmatch(identifier, p) for p in build), f"{identifier} is not in build={build}"
                assert not any(fnmatch.fnmatch(identifier, p) for p in skip), f"{identifier} is skipped ({platform})"
    assert not any(fnmatch.fnmatch("cp310-manylinux_x86_64", p) for p in build), "3.10 is below requires-python"


def test_cibuildwheel_archs() -> None:
    config = pyproject()["tool"]["cibuildwheel"]
    for platform, archs in PLATFORM_ARCHS.items():
        configured = config.get(platform, {}).get("archs", config.get("archs", ["auto"]))
        configured = configured.split() if isinstance(configured, str) else configured
        assert set(archs) <= set(configured), f"[tool.cibuildwheel.{platform}] archs = {configured}"


@pytest.mark.parametrize("platform", sorted(PLATFORM_ARCHS))
def test_cibuildwheel_tests_each_wheel_with_extensions_required(platform: str) -> None:
    """A wheel whose extensions fail to load must fail its tests, not pass on the pure fallback."""
    config = pyproject()["tool"]["cibuildwheel"]
    specific = config.get(platform, {})
    command = specific.get("test-command", config.get("test-command", ""))
    command = " && ".join(command) if isinstance(command, list) else str(command)
    environment = {**config.get("test-environment", {}), **specific.get("test-environment", {})}
    assert "pytest" in command, f"{platform}: test-command does not run pytest: {command!r}"
    assert "{project}/tests" in command or config.get("test-sources"), f"{platform}: tests not found: {command!r}"
    assert f"{REQUIRE}=1" in command or str(environment.get(REQUIRE)) == "1", (
        f"{platform}: the wheel tests must run with {REQUIRE}=1"
    )
    assert "test" in config.get("test-extras", []), "the tests' dependencies come from the [test] extra"


def test_sdist_job_builds_and_uploads_the_sdist() -> None:
    jobs = wheels_jobs()
    sdist = [job for job in jobs.values() if "--sdist" in runs(job)]
    assert sdist, "no job builds the sdist"
    (job,) = sdist
    assert "build" in runs(job)
    uploads = uses(job, "actions/upload-artifact")
    assert uploads
    assert any(".tar.gz" in str(u["with"]["path"]) for u in uploads)


def test_every_build_job_uploads_its_artifacts() -> None:
    _, job, _ = cibuildwheel_job()
    (upload,) = uses(job, "actions/upload-artifact")
    assert "wheelhouse" in str(upload["with"]["path"])
    name = str(upload["with"]["name"])
    assert "matrix.os" in name, "artifact names must differ per matrix leg (upload-artifact v4+ refuses duplicates)"
    assert "matrix.arch" in name


def test_publish_runs_on_tags_after_sdist_and_wheels_with_trusted_publishing() -> None:
    jobs = wheels_jobs()
    assert "push" in triggers(load("wheels.yml"))
    publishing = [(job_id, job) for job_id, job in jobs.items() if uses(job, "pypa/gh-action-pypi-publish")]
    assert len(publishing) == 1
    _, job = publishing[0]
    build_jobs = {job_id for job_id, j in jobs.items() if uses(j, "actions/upload-artifact")}
    needs = job.get("needs")
    needs = {needs} if isinstance(needs, str) else set(needs or [])
    assert build_jobs <= needs, f"publish must wait for {sorted(build_jobs)}, needs only {sorted(needs)}"
    assert "refs/tags/" in str(job.get("if", "")), "publish only on tags"
    assert job.get("permissions", {}).get("id-token") == "write", "trusted publishing needs id-token: write"
    assert job.get("environment"), "publish from a protected environment"
    (publish,) = uses(job, "pypa/gh-action-pypi-publish")
    assert not {"password", "user"} & set(publish.get("with") or {}), "trusted publishing takes no token"
    # the download pattern must collect every uploaded artifact
    (download,) = uses(job, "actions/download-artifact")
    pattern = str(download["with"].get("pattern", "*"))
    assert download["with"].get("merge-multiple") is True
    for build_job in build_jobs:
        for upload in uses(jobs[build_job], "actions/upload-artifact"):
            literal = re.sub(r"\$\{\{.*?\}\}", "x", str(upload["with"]["name"]))
            assert fnmatch.fnmatch(literal, pattern), f"artifact {upload['with']['name']} escapes pattern {pattern}"


# --------------------------------------------------------------------------------------------
# bench.yml


def bench_job() -> Job:
    jobs = load("bench.yml")["jobs"]
    assert len(jobs) == 1
    return typing.cast("Job", next(iter(jobs.values())))


def test_bench_runs_on_push() -> None:
    assert "push" in triggers(load("bench.yml"))


def test_bench_runs_the_benchmarks_and_writes_json() -> None:
    script = runs(bench_job())
    assert re.search(r"pytest benchmarks/ --benchmark-only", script)
    match = re.search(r"--benchmark-json=(\S+)", script)
    assert match, "no --benchmark-json"
    uploads = uses(bench_job(), "actions/upload-artifact")
    assert uploads, "the results are not kept as an artifact"
    assert match.group(1) in str(uploads[0]["with"]["path"]), "the uploaded artifact is not the JSON pytest wrote"
    assert uploads[0].get("if") == "always()", "keep the results of a failing (regressed) run too, to look at"


def test_bench_compares_with_the_previous_run_and_fails_on_regression() -> None:
    from pytest_benchmark.utils import parse_compare_fail

    workflow = load("bench.yml")
    job = bench_job()
    script = runs(job)
    assert "--benchmark-compare=" in script
    assert re.search(r"--benchmark-compare-fail=\S", script), "no --benchmark-compare-fail in any run: step"
    (pytest_step,) = [step for step in steps(job) if "pytest benchmarks/" in str(step.get("run", ""))]
    if "--benchmark-compare" not in pytest_step["run"]:
        # the options come from an earlier step, through the environment
        passed = [name for name in (pytest_step.get("env") or {}) if f"${name}" in pytest_step["run"]]
        assert passed, "the pytest step does not receive the comparison options"
    threshold = (workflow.get("env") or {}).get("BENCH_FAIL_THRESHOLD") or (job.get("env") or {}).get(
        "BENCH_FAIL_THRESHOLD"
    )
    assert threshold, "set BENCH_FAIL_THRESHOLD"
    parse_compare_fail(threshold)  # raises on an expression pytest-benchmark would reject
    downloads = uses(job, "dawidd6/action-download-artifact")
    (upload,) = uses(job, "actions/upload-artifact")
    if downloads:
        for download in downloads:
            options = download["with"]
            assert options["workflow"] == "bench.yml", "the baseline comes from this workflow's runs"
            assert options["name"] == upload["with"]["name"], "downloading a different artifact than is uploaded"
            assert options.get("if_no_artifact_found") in {"warn", "ignore"}, "the first run has no baseline"
        assert (workflow.get("permissions") or {}).get("actions") == "read", "listing other runs needs actions: read"
    else:
        assert uses(job, "actions/cache"), "no way to get the previous run's results"
