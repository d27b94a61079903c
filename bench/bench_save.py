"""Saving results: results per second to each target, and a scan as one document or many.

Printed, each beside its baseline in the same run (median of --repeat):

1. --count distinct one-point results (default 1,000) saved
   * to the filesystem target (atomic, fsync'd file per result), against a plain
     ``open().write(json.dumps(doc))`` of the same documents;
   * to the MongoDB target (a real SecantusDB server in this process, pymongo client)
     through ``save_result`` (one client per save, as a run does) and through one open
     ``MongoTarget`` (bulk), against a raw pymongo ``insert_one`` loop of the same documents.
2. A scan of --scan-points points stored as ONE result document (this package's choice)
   against ONE DOCUMENT PER POINT (insert_many of per-point results): time, bytes, and
   how many scan points fit under MongoDB's 16 MB document limit.

    python bench/bench_save.py [--count 1000] [--scan-points 1000] [--repeat 3]
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

MONGO_LIMIT = 16 * 1024 * 1024  # MongoDB's maximum BSON document size


def rate(fn: Callable[[], object], count: int, repeat: int) -> list[float]:
    """Items per second of ``fn`` (which saves ``count`` items), one value per repeat."""
    rates = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        rates.append(count / (time.perf_counter() - start))
    return rates


def show(name: str, rates: list[float], baseline: list[float] | None = None) -> None:
    med = statistics.median(rates)
    ratio = f"  {med / statistics.median(baseline):5.2f}x baseline" if baseline else ""
    spread = f"[{min(rates):,.0f}-{max(rates):,.0f}]"
    print(f"  {name:46s} {med:9,.0f} /s {spread:>19s}{ratio}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--scan-points", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    import bson
    from pymongo import MongoClient
    from secantus import SecantusDBServer

    from my_package.config import ResultsDBSettings, Settings
    from my_package.model import MyPackageModel
    from my_package.results import Result, numpy_default
    from my_package.targets import MongoTarget, save_result

    model = MyPackageModel()
    first = model.input_variables[0]  # scanned over its range: any model's variables work
    scanned, (low, high) = first.name, first.value_range
    ks = np.linspace(low, high, args.count * args.repeat * 4)  # distinct points for every save
    batches = iter(np.split(ks, args.repeat * 4))

    def results(tag: str) -> list[Result]:
        points = next(batches)
        values = model.input_validation({scanned: points})
        outputs = model._evaluate(values)
        return [
            Result(
                flow_id=tag,
                project_name="bench",
                inputs={**values, scanned: k},
                outputs={name: float(out[i]) for name, out in outputs.items()},
            )
            for i, k in enumerate(points.tolist())
        ]

    server = SecantusDBServer(host="127.0.0.1", port=0, storage_path=":memory:")
    server.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            db = ResultsDBSettings(host=server.host, port=server.port, database="bench")
            settings = Settings(output_dir=work / "fs", results_db=db, target="filesystem")
            raw_client = MongoClient(server.host, server.port, tz_aware=True)
            raw = raw_client["bench"]["raw"]
            raw.create_index("unique_hash", unique=True)
            fs_rates: list[float] = []
            fs_base: list[float] = []
            mg_rates: list[float] = []
            mg_bulk: list[float] = []
            mg_base: list[float] = []
            for rep in range(args.repeat):  # interleaved: subject and baseline alike
                batch = results(f"fs{rep}")
                for r in batch:
                    _ = r.unique_hash  # every path hashes once, outside the timing
                base_dir = work / f"plain{rep}"
                base_dir.mkdir()

                def plain_files(batch: list[Result] = batch, base_dir: Path = base_dir) -> None:
                    for r in batch:
                        doc = r.to_document()
                        doc["date_modified"] = r.date_modified.isoformat()
                        text = json.dumps(doc, default=numpy_default)
                        (base_dir / f"{r.unique_hash}.json").write_text(text)

                fs_base += rate(plain_files, args.count, 1)
                fs_rates += rate(
                    lambda batch=batch: [save_result(r, settings) for r in batch], args.count, 1
                )
                batch = results(f"mongo{rep}")
                for r in batch:
                    _ = r.unique_hash
                mg_base += rate(
                    lambda batch=batch: [raw.insert_one(r.to_document()) for r in batch],
                    args.count,
                    1,
                )
                mg_rates += rate(
                    lambda batch=batch: [save_result(r, settings, "mongodb") for r in batch],
                    args.count,
                    1,
                )
                batch = results(f"bulk{rep}")
                for r in batch:
                    _ = r.unique_hash

                def bulk(batch: list[Result] = batch) -> None:
                    with MongoTarget(db) as target:
                        for r in batch:
                            target.save(r)

                mg_bulk += rate(bulk, args.count, 1)

            print(
                f"saving {args.count:,} one-point results, median of {args.repeat} "
                f"(python {sys.version.split()[0]}, {os.cpu_count()} cpus)"
            )
            print(" filesystem:")
            show("baseline: open().write(json.dumps(doc))", fs_base)
            show("FilesystemTarget via save_result (fsync'd)", fs_rates, fs_base)
            print(" MongoDB (SecantusDB, in-process, :memory:):")
            show("baseline: raw pymongo insert_one", mg_base)
            show("save_result (new client per save, as a run)", mg_rates, mg_base)
            show("one MongoTarget for all saves (bulk)", mg_bulk, mg_base)

            # 2. a scan: one document, or one per point
            n = args.scan_points
            values = model.input_validation({scanned: np.linspace(low, high, n)})
            outputs = model._evaluate(values)
            scan_times: dict[str, list[float]] = {"one": [], "per_point": []}
            one_doc_bytes = per_point_bytes = 0
            scan_target = MongoTarget(db)  # one open client for both ways, as for raw_client
            scan_target._collection("bench")  # connect and create the index before timing
            for rep in range(args.repeat):
                one = Result(
                    flow_id=f"scan{rep}", project_name="bench", inputs=values, outputs=outputs
                )
                start = time.perf_counter()
                scan_target.save(one)
                scan_times["one"].append(time.perf_counter() - start)
                one_doc_bytes = len(bson.encode(one.to_document()))
                start = time.perf_counter()
                points = [
                    Result(
                        flow_id=f"scan{rep}",
                        project_name="bench_points",
                        inputs={k: float(v[i]) if np.ndim(v) else v for k, v in values.items()},
                        outputs={k: float(v[i]) for k, v in outputs.items()},
                    ).to_document()
                    for i in range(n)
                ]
                raw_client["bench"]["points"].insert_many(points)
                scan_times["per_point"].append(time.perf_counter() - start)
                per_point_bytes = sum(len(bson.encode(p)) for p in points)
            scan_target.close()
            raw_client.close()
    finally:
        server.stop()

    per_point_in_one = one_doc_bytes / n
    fits = int(MONGO_LIMIT / per_point_in_one)
    print(f"\n a scan of {n:,} points (1 scanned input, 3 outputs) to MongoDB:")
    for key, label in (("one", "one document for the whole scan"), ("per_point", "one per point")):
        med = statistics.median(scan_times[key])
        size = one_doc_bytes if key == "one" else per_point_bytes
        print(
            f"  {label:34s} {med * 1e3:8.1f} ms  {n / med:9,.0f} points/s  "
            f"{size / 1024:8.1f} KiB in BSON"
        )
    ratio = statistics.median(scan_times["per_point"]) / statistics.median(scan_times["one"])
    print(
        f"  one document is {ratio:.1f}x faster to write and {per_point_bytes / one_doc_bytes:.1f}x"
    )
    print(f"  smaller; at {per_point_in_one:.1f} B/point it holds at most ~{fits:,} points")
    print("  under the 16 MB limit (a larger scan fails with a clear TargetError: use the")
    print("  filesystem target, or split the scan).")


if __name__ == "__main__":
    main()
