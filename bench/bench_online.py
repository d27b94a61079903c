"""Online model latency: a put to an input until every output PV has its new value.

Printed beside the baseline measured in the same run, median and p99 of --puts puts:

* baseline: the model called directly in this process, ``evaluate`` (and, for the server's
  own path, ``set`` then ``get`` of the LUMEModel, which is what lume-pva calls per put);
* ``python -m my_package serve --protocol pva`` in its own process on 127.0.0.1 (free ports):
  a p4p client puts the first input (alternating two values inside its range) and waits
  until a monitor on every output has delivered the update; also the put's round trip
  alone (it completes once the model has run and the outputs are posted). Half the puts
  use p4p's default ``get=True`` (it reads the PV before writing), half ``get=False``.

Goal (issue 15): median put-to-updated-output under 5 ms above ``evaluate``'s median.

    python bench/bench_online.py [--puts 1000]
"""

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

# tests/ holds the EPICS loopback settings that the online tests use too.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from epics_loopback import pva_env

PREFIX = "BENCH:"


def summary(name: str, ms: list[float], baseline: float | None = None) -> None:
    ms = sorted(ms)
    median = statistics.median(ms)
    p99 = ms[min(len(ms) - 1, round(0.99 * (len(ms) - 1)))]
    above = f"  {median - baseline:+8.3f} ms vs evaluate" if baseline is not None else ""
    print(f"  {name:44s} median {median:8.3f} ms   p99 {p99:8.3f} ms{above}")


def two_values(var) -> tuple[float, float]:
    low, high = var.value_range
    return low + 0.3 * (high - low), low + 0.7 * (high - low)


def time_calls(fn, values: list[float]) -> list[float]:
    times = []
    for value in values:
        start = time.perf_counter()
        fn(value)
        times.append((time.perf_counter() - start) * 1e3)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--puts", type=int, default=1000)
    args = parser.parse_args()

    from p4p.client.thread import Context

    from my_package.online import package_model

    model = package_model()
    variables = model.supported_variables
    # The first settable input with a range (two values inside it), every output watched.
    first = next(
        variables[name]
        for name in model.input_names
        if not variables[name].read_only and getattr(variables[name], "value_range", None)
    )
    outputs = model.output_names
    values = [two_values(first)[i % 2] for i in range(args.puts)]

    print(f"{args.puts} puts of {first.name!r}; outputs watched: {', '.join(outputs)}")
    print("baseline (in this process):")
    evaluate = time_calls(lambda v: model.evaluate({first.name: v}), values)
    summary("evaluate", evaluate)
    summary(
        "LUMEModel set + get",
        time_calls(lambda v: (model.set({first.name: v}), model.get(outputs)), values),
    )
    base = statistics.median(evaluate)

    env = {**os.environ, **pva_env()}
    server = subprocess.Popen(
        [sys.executable, "-m", "my_package", "serve", "--protocol", "pva", "--prefix", PREFIX],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        for line in server.stdout:
            if line.startswith("serving over"):
                break
        else:
            sys.exit("error: serve did not start")
        conf = {k: v for k, v in env.items() if k.startswith("EPICS_PVA_")}
        ctx = Context("pva", conf=conf, useenv=False)
        updates = dict.fromkeys(outputs, 0)
        changed = threading.Condition()

        def on_update(name: str):
            def callback(value: object) -> None:
                with changed:
                    updates[name] += 1
                    changed.notify_all()

            return callback

        subs = [
            ctx.monitor(PREFIX + name, on_update(name), notify_disconnect=False) for name in outputs
        ]
        with changed:  # every monitor delivers the current value first
            changed.wait_for(lambda: all(updates.values()), timeout=30)

        # p4p's put reads the PV first by default (get=True: one more round trip); get=False
        # sends the value at once, as a plain-value client can. Interleaved, so load skews both.
        round_trip = {True: [], False: []}
        updated = {True: [], False: []}
        for i, value in enumerate(values):
            get_first = i % 4 < 2  # pairs, so each kind alternates the two values
            with changed:
                seen = dict(updates)
            start = time.perf_counter()
            ctx.put(PREFIX + first.name, value, wait=True, get=get_first)
            round_trip[get_first].append((time.perf_counter() - start) * 1e3)
            with changed:
                done = changed.wait_for(
                    lambda seen=seen: all(updates[n] > seen[n] for n in outputs), 10
                )
                if not done:
                    sys.exit("error: an output PV was not updated within 10 s")
            updated[get_first].append((time.perf_counter() - start) * 1e3)
        for sub in subs:
            sub.close()
        ctx.close()
    finally:
        server.terminate()
        server.wait(timeout=30)

    print("serve --protocol pva (p4p client, 127.0.0.1), half the puts each way:")
    for get_first in (True, False):
        how = "put(get=True)" if get_first else "put(get=False)"
        summary(f"{how} round trip", round_trip[get_first], base)
        summary(f"{how} -> every output PV updated", updated[get_first], base)
    goal = statistics.median(updated[True]) - base
    verdict = "met" if goal < 5 else "NOT met"
    print(f"goal: median put(get=True) -> outputs < 5 ms above evaluate: {goal:.3f} ms ({verdict})")


if __name__ == "__main__":
    main()
