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
3. A scan of --image-points points with an image output (32 x 32 per point) to MongoDB,
   the images in an HDF5 file on the mounted filesystem (too large for one document
   otherwise), saved and loaded back; against writing the same bytes with numpy.
4. ``results list`` over --list-count saved results on the filesystem target, in
   process and as a cold command, against reading the same metadata files bare.

    python bench/bench_save.py [--count 1000] [--scan-points 1000] [--image-points 10000]
                               [--list-count 10000] [--repeat 3]
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
    parser.add_argument("--image-points", type=int, default=10_000)
    parser.add_argument("--list-count", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only-new", action="store_true", help="parts 3 and 4 only")
    args = parser.parse_args()
    if args.only_new:
        image_scan(args)
        results_list(args)
        return

    import bson
    from pymongo import MongoClient
    from secantus import SecantusDBServer

    from my_package.config import ResultsDBSettings, Settings
    from my_package.model import MyPackageModel
    from my_package.results import Result, numpy_default
    from my_package.targets import MongoTarget, save_result
    from my_package.validation import validate_inputs

    model = MyPackageModel()
    first = model.input_variables[0]  # scanned over its range: any model's variables work
    scanned, (low, high) = first.name, first.value_range
    ks = np.linspace(low, high, args.count * args.repeat * 4)  # distinct points for every save
    batches = iter(np.split(ks, args.repeat * 4))

    def results(tag: str) -> list[Result]:
        points = next(batches)
        values = validate_inputs({scanned: points}, model.input_variables)
        outputs = model._evaluate(values)
        return [
            Result(
                flow_id=tag,
                project_name="bench",
                inputs={**values, scanned: k},
                outputs={name: out[i].tolist() for name, out in outputs.items()},
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
            values = validate_inputs({scanned: np.linspace(low, high, n)}, model.input_variables)
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
                        outputs={k: v[i].tolist() for k, v in outputs.items()},
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
    print(f"\n a scan of {n:,} points (1 scanned input, {len(outputs)} outputs) to MongoDB:")
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
    image_scan(args)
    results_list(args)


def image_scan(args: argparse.Namespace) -> None:
    """3. An image-output scan to MongoDB through the mounted filesystem."""
    import bson
    from secantus import SecantusDBServer

    from my_package.config import MountedFilesystemSettings, ResultsDBSettings
    from my_package.results import Result
    from my_package.targets import MongoTarget

    n = args.image_points
    rng = np.random.default_rng(0)
    k = np.linspace(-1.0, 1.0, n)
    images = rng.random((n, 32, 32))  # made-up images: the storage path is what is timed
    inline = len(bson.encode({"outputs": {"image": images[:100].tolist()}})) / 100
    saves, loads, plain = [], [], []
    server = SecantusDBServer(host="127.0.0.1", port=0, storage_path=":memory:")
    server.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            db = ResultsDBSettings(host=server.host, port=server.port, database="bench")
            files = MountedFilesystemSettings(mount_path=Path(tmp) / "mount")
            with MongoTarget(db, files) as target:
                for rep in range(args.repeat):
                    result = Result(
                        flow_id=f"images{rep}",
                        project_name="bench_images",
                        inputs={"k": k},
                        outputs={"image": images, "peak": images.max(axis=(1, 2))},
                    )
                    start = time.perf_counter()
                    ref = target.save(result)
                    saves.append(time.perf_counter() - start)
                    start = time.perf_counter()
                    target.load(ref)
                    loads.append(time.perf_counter() - start)
                    start = time.perf_counter()
                    with open(Path(tmp) / f"plain{rep}.npy", "wb") as fh:
                        np.save(fh, images)
                        fh.flush()
                        os.fsync(fh.fileno())
                    plain.append(time.perf_counter() - start)
    finally:
        server.stop()
    mb = images.nbytes / 2**20
    print(
        f"\n an image-output scan of {n:,} points (32 x 32 float64 each, {mb:.0f} MB) to MongoDB:"
    )
    over = "over" if inline * n > MONGO_LIMIT else "under"
    print(f"  as one document it would be ~{inline * n / 2**20:,.0f} MB: {over} the 16 MB limit")
    print(f"  (at most ~{int(MONGO_LIMIT / inline):,} such points fit in one document)")
    for label, times, base in (
        ("save (HDF5 on the mount + document)", saves, plain),
        ("load (document + files, sha256 checked)", loads, plain),
        ("baseline: np.save of the images, fsync'd", plain, None),
    ):
        med = statistics.median(times)
        ratio = f"  {med / statistics.median(base):5.2f}x baseline" if base else ""
        print(f"  {label:42s} {med * 1e3:8.1f} ms  {mb / med:7.0f} MB/s{ratio}")


def _children_cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def results_list(args: argparse.Namespace) -> None:
    """4. ``results list`` over many saved results (filesystem target)."""
    import subprocess

    from my_package.model import MyPackageModel
    from my_package.results import Result, run_metadata
    from my_package.results_cli import list_rows
    from my_package.targets import FilesystemTarget
    from my_package.validation import validate_inputs

    model = MyPackageModel()
    first = model.input_variables[0]
    low, high = first.value_range
    count = args.list_count
    with tempfile.TemporaryDirectory() as tmp:
        target = FilesystemTarget(Path(tmp))
        start = time.perf_counter()
        for i, value in enumerate(np.linspace(low, high, count).tolist()):
            inputs = validate_inputs({first.name: value}, model.input_variables)
            outputs = model._evaluate(inputs)
            meta = run_metadata(model, inputs, None, f"run-{i}")
            target.save(
                Result(
                    project_name="bench",
                    flow_id=f"f{i}",
                    inputs=inputs,
                    outputs=outputs,
                    metadata=meta,
                )
            )
        filling = time.perf_counter() - start
        directory = Path(tmp) / "bench"

        def bare() -> None:
            for entry in os.scandir(directory):
                if entry.name.endswith(".meta"):
                    json.loads(Path(entry.path).read_bytes())

        env = {**os.environ, "MY_PACKAGE_OUTPUT_DIR": tmp, "MY_PACKAGE_PROJECT_NAME": "bench"}
        command = [sys.executable, "-m", "my_package", "results", "list", "--limit", "0"]
        timings: dict[str, list[float]] = {"bare": [], "list": [], "cold": []}
        cpu: dict[str, list[float]] = {"bare": [], "list": [], "cold": []}
        for _ in range(args.repeat):
            for key, fn in (
                ("bare", bare),
                ("list", lambda: list_rows(target, "bench", None, None, {})),
                ("cold", lambda: subprocess.run(command, env=env, check=True, capture_output=True)),
            ):
                # CPU time beside wall time: on a shared, loaded machine the wall time
                # mostly measures waiting for a core.
                start, own, kids = time.perf_counter(), time.process_time(), _children_cpu()
                fn()
                timings[key].append(time.perf_counter() - start)
                cpu[key].append(time.process_time() - own + _children_cpu() - kids)
        rows = len(list_rows(target, "bench", None, None, {}))
    print(f"\n results list over {rows:,} saved results (filesystem; saved in {filling:.1f} s):")
    base = statistics.median(timings["bare"])
    for key, label in (
        ("bare", "baseline: read and parse every .meta file"),
        ("list", "list_rows (parse, filter, sort newest first)"),
        ("cold", "python -m my_package results list --limit 0"),
    ):
        med = statistics.median(timings[key])
        print(
            f"  {label:46s} {med:7.3f} s  {med / base:5.2f}x baseline"
            f"   cpu {statistics.median(cpu[key]):6.3f} s"
        )


if __name__ == "__main__":
    main()
