"""What a flow run leaves behind besides the record: metadata, the plot artifact, the summary.

Run through Prefect's test harness (a real temporary API). Variable names come from
variables.yml, so these tests hold for any model.
"""

import base64
import re
import struct

from my_package import __version__
from my_package.cli import main
from my_package.results_cli import PANEL_PX
from my_package.targets import load_result
from my_package.validation import ScanRange
from my_package.variables import load_variables

INPUTS, OUTPUTS = load_variables()
FIRST = INPUTS[0]


def _scan(num: int) -> dict[str, ScanRange]:
    low, high = FIRST.value_range
    return {FIRST.name: ScanRange(start=low, stop=high, num=num)}


def test_saved_scan_has_metadata_and_a_plot_artifact(prefect_api, filesystem):
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    from my_package.flow import my_package_flow

    ref = my_package_flow(scan=_scan(25))
    result = load_result(ref)
    with get_client(sync_client=True) as client:
        flow_run = client.read_flow_run(result.flow_id)
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run.id]))
        )
    meta = result.metadata
    assert meta["flow_run_name"] == flow_run.name
    assert meta["package_version"] == __version__
    assert meta["model_class"] == "my_package.model.MyPackageModel"
    assert meta["scan"] == {
        FIRST.name: {"start": FIRST.value_range[0], "stop": FIRST.value_range[1], "num": 25}
    }
    assert meta["grid_shape"] == [25] and meta["points"] == 25
    assert meta["units"][OUTPUTS[0].name] == (OUTPUTS[0].unit or "")

    (plot,) = [a for a in artifacts if a.key == "my-package-plot"]
    assert plot.type == "markdown" and ref.unique_hash in plot.description
    match = re.fullmatch(r"!\[[^\]]*\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)", plot.data)
    png = base64.b64decode(match.group(1), validate=True)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR"
    width, height = PANEL_PX
    panels = sum(1 for name in result.outputs if len(result.outputs[name]) == 25)
    assert struct.unpack(">II", png[16:24]) == (width, max(2 * height, height * panels))


def test_one_point_run_has_no_plot_artifact(prefect_api, filesystem):
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    from my_package.flow import my_package_flow

    ref = my_package_flow()
    flow_id = load_result(ref).flow_id
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_id]))
        )
    assert [a.key for a in artifacts if a.key] == ["my-package-result"]  # no plot


def test_run_scan_prints_the_summary_evaluate_scan_prints(prefect_api, filesystem, capsys):
    low, high = FIRST.value_range
    scan = f"{FIRST.name}={low}:{high}:9"
    assert main(["evaluate", "--scan", scan]) == 0
    evaluated = capsys.readouterr().out.splitlines()
    assert main(["run", "--scan", scan]) == 0
    ran = capsys.readouterr().out.splitlines()
    assert ran[:-1] == evaluated[:-1]  # the same summary; only the saved location differs
    assert [line.split(" = ")[0] for line in ran[:-1]][: len(OUTPUTS)] == [v.name for v in OUTPUTS]
    assert ran[-1].startswith("Result saved to ")
