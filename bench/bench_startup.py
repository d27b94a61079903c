"""Start-up cost: ``--help``, ``import my_package`` and one cold ``evaluate``, beside baselines.

Each command runs in a fresh Python process, interleaved with the others (so drifts in
machine load hit all alike); the median and range of --repeat runs are printed with
ratios to the baselines ``python -c pass``, ``python -c "import numpy, yaml, pydantic"``
(the fast path's floor) and ``python -c "import prefect"``, and beside the imports
``evaluate`` cannot avoid: ``import lume.variables`` (lume-base, the floor since issue 11)
and it with pydantic_settings. Then ``-X importtime`` lists the slowest imports
(cumulative) of ``--help`` and of ``evaluate``.

    python bench/bench_startup.py [--repeat 15] [--top 12]

Goals (issue 6): --help < 0.3 s; evaluate < 1 s and within 1.5x of numpy+yaml+pydantic.
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COMMANDS = {
    "pass": ["-c", "pass"],
    "import numpy, yaml, pydantic": ["-c", "import numpy, yaml, pydantic"],
    "import prefect": ["-c", "import prefect"],
    # What evaluate cannot avoid: lume-base's variables (which import openpmd-beamphysics,
    # hence scipy and matplotlib) and pydantic-settings (config.py).
    "import lume.variables": ["-c", "import lume.variables"],
    "import deps of evaluate": ["-c", "import lume.variables, pydantic_settings"],
    "import my_package": ["-c", "import my_package"],
    "-m my_package --help": ["-m", "my_package", "--help"],
    "-m my_package evaluate": ["-m", "my_package", "evaluate"],
}


def wall(args: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, *args], cwd=cwd, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def import_times(args: list[str], cwd: Path, env: dict[str, str]) -> list[tuple[int, int, str]]:
    """Every import of ``python ARGS`` as (cumulative us, depth, module), from -X importtime."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", *args],
        cwd=cwd,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    rows = []
    for line in proc.stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \| (\s*)(\S+)", line)
        if match:
            depth = len(match.group(3)) // 2
            rows.append((int(match.group(2)), depth, match.group(4)))
    return rows


def slowest(rows: list[tuple[int, int, str]], top: int) -> list[str]:
    """The ``top`` imports with the largest cumulative time, one line each."""
    total = sum(cumulative for cumulative, depth, _ in rows if depth == 0)
    lines = [f"    total of top-level imports {total / 1000:7.1f} ms"]
    for cumulative, depth, name in sorted(rows, reverse=True)[:top]:
        lines.append(f"    {cumulative / 1000:7.1f} ms  {'  ' * depth}{name}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--top", type=int, default=12)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        env = {**os.environ, "MY_PACKAGE_OUTPUT_DIR": str(work / "results")}
        for cmd in COMMANDS.values():  # warm the OS file cache and __pycache__
            wall(cmd, work, env)
        times: dict[str, list[float]] = {name: [] for name in COMMANDS}
        for _ in range(args.repeat):
            for name, cmd in COMMANDS.items():
                times[name].append(wall(cmd, work, env))
        median = {name: statistics.median(values) for name, values in times.items()}
        print(f"cold-process wall time, median of {args.repeat} (python {sys.version.split()[0]})")
        print(
            f"  {'command':30s} {'median':>8s}  {'range':>13s}  {'/pass':>6s} {'/np+yaml+pyd':>12s}"
        )
        for name, values in times.items():
            spread = f"{min(values):.3f}-{max(values):.3f}"
            ratio_pass = median[name] / median["pass"]
            ratio_floor = median[name] / median["import numpy, yaml, pydantic"]
            print(
                f"  {name:30s} {median[name]:6.3f} s  {spread:>13s}  "
                f"{ratio_pass:5.1f}x {ratio_floor:11.2f}x"
            )
        help_ok = median["-m my_package --help"] < 0.3
        evaluate = median["-m my_package evaluate"]
        ratio = evaluate / median["import numpy, yaml, pydantic"]
        print(f"  goal --help < 0.3 s: {'met' if help_ok else 'NOT met'}")
        print(
            f"  goal evaluate < 1 s and <= 1.5x numpy+yaml+pydantic: "
            f"{'met' if evaluate < 1 and ratio <= 1.5 else 'NOT met'} ({ratio:.2f}x)"
        )
        deps = median["import deps of evaluate"]
        print(f"  evaluate / the imports it cannot avoid: {evaluate / deps:.2f}x")
        for name in ("-m my_package --help", "-m my_package evaluate"):
            rows = import_times(COMMANDS[name], work, env)
            print(f"\n  slowest imports (cumulative) of python {name}:")
            print("\n".join(slowest(rows, args.top)))
            if name == "-m my_package --help":
                imported_prefect = any(module == "prefect" for *_, module in rows)
        print(f"\n  --help imports prefect: {'YES (should not)' if imported_prefect else 'no'}")


if __name__ == "__main__":
    main()
