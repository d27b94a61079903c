"""The online model: ``python -m my_package serve`` on a real PVAccess / Channel Access server,
read and written by real clients (p4p for PVAccess, pyepics for Channel Access), 127.0.0.1 only.

Every server runs in its own process, bound to loopback with free ports, and is stopped by pid.
Tests that start a server are marked slow (a start takes 2-12 s on this machine).
Variable names, ranges and units come from the package's model (variables.yml), so the tests
hold for any model; expected outputs are what ``evaluate`` gives, compared exactly.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from epics_loopback import ca_env, free_tcp_udp_port, pva_env
from lume.model import LUMEModel
from lume.variables import NDVariable, ScalarVariable
from p4p.client.thread import Context, RemoteError

from my_package.model import MyPackageModel
from my_package.online import TRANSPORTS

ROOT = Path(__file__).resolve().parents[1]
PREFIX = "TEST:"
STARTUP_TIMEOUT = 60


class GridModel(LUMEModel):
    """Test-only LUMEModel with a 2x3 array output: a non-square shape shows the axis order.

    Its input ``x`` has a range but, like a ``default_validation_config: warn`` variable of
    variables.yml, accepts values outside it: the PV then carries lume-pva's MAJOR alarm.
    """

    def __init__(self) -> None:
        self._variables = {
            "x": ScalarVariable(name="x", default_value=1.0, value_range=(0.0, 10.0)),
            "grid": NDVariable(name="grid", shape=(2, 3), read_only=True),
        }
        self.reset()

    @property
    def supported_variables(self) -> dict:
        return self._variables

    def reset(self) -> None:
        self._set({"x": 1.0})

    def _set(self, values: dict) -> None:
        self.x = values.get("x", getattr(self, "x", 1.0))
        self.grid = np.arange(6.0).reshape(2, 3) * self.x

    def _get(self, names: list[str]) -> dict:
        return {name: getattr(self, name) for name in names}


@dataclass(frozen=True)
class Epics:
    """EPICS network settings that keep servers and clients on 127.0.0.1."""

    env: dict[str, str]

    def pva_client_conf(self) -> dict[str, str]:
        return {k: v for k, v in self.env.items() if k.startswith("EPICS_PVA_")}


@pytest.fixture(scope="session")
def epics() -> Epics:
    return Epics({**pva_env(), **ca_env()})


@dataclass
class Server:
    """A running ``serve`` process, what it printed when it came up, and its stderr file."""

    process: subprocess.Popen
    banner: list[str]
    stderr: Path

    def stop(self, signum: int = signal.SIGINT) -> tuple[int, str, str]:
        """Stop by pid; return (exit code, rest of stdout, stderr)."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signum)
        try:
            out, _ = self.process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.kill(self.process.pid, signal.SIGKILL)
            out, _ = self.process.communicate()
        return self.process.returncode, out, self.stderr.read_text()


def serve_command(protocol: str, prefix: str | None = PREFIX) -> list[str]:
    """``python -m my_package serve``; ``prefix=None`` leaves it to the setting."""
    option = [] if prefix is None else ["--prefix", prefix]
    return [sys.executable, "-m", "my_package", "serve", "--protocol", protocol, *option]


def grid_command() -> list[str]:
    """A server of GridModel through online.serve (the package's model has no 2-D output)."""
    code = (
        "import sys\n"
        f"sys.path.insert(0, {str(ROOT / 'tests')!r})\n"
        "from test_online import GridModel\n"
        "from my_package.online import serve\n"
        f"serve(GridModel(), {PREFIX!r}, 'pva')\n"
    )
    return [sys.executable, "-c", code]


def start_server(epics: Epics, command: list[str], tmp_path: Path) -> Server:
    # stderr to a file: a pipe nobody reads while the server runs could fill up and block it.
    stderr = tmp_path / "serve.stderr"
    with stderr.open("w") as err_file:
        process = subprocess.Popen(
            command,
            cwd=tmp_path,
            env={**os.environ, **epics.env},
            stdout=subprocess.PIPE,
            stderr=err_file,
            text=True,
        )
    banner: list[str] = []
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        banner.append(line.rstrip("\n"))
        if line.startswith("serving over"):
            return Server(process, banner, stderr)
    process.kill()
    process.communicate()
    pytest.fail(f"serve did not start: {banner}\n{stderr.read_text()[-3000:]}")


MODEL = MyPackageModel()
VARIABLES = MODEL.supported_variables
OUTPUTS = {name: VARIABLES[name] for name in MODEL.output_names}
SCALAR_OUTPUTS = [n for n, v in OUTPUTS.items() if isinstance(v, ScalarVariable)]
ARRAY_OUTPUTS = [n for n, v in OUTPUTS.items() if isinstance(v, NDVariable)]
# Settable scalar inputs (read-only inputs are served read-only, array inputs as arrays).
INPUTS = {
    name: VARIABLES[name]
    for name in MODEL.input_names
    if not VARIABLES[name].read_only and isinstance(VARIABLES[name], ScalarVariable)
}
# The input the tests put: the first with a range, so that values inside and outside it exist.
FIRST = next(var for var in INPUTS.values() if var.value_range is not None)


def expected_outputs(**inputs: float) -> dict:
    """What ``evaluate`` gives for these inputs (the others at their defaults)."""
    return MyPackageModel().evaluate(inputs)


def inside(var: ScalarVariable, fraction: float) -> float:
    low, high = var.value_range
    return low + fraction * (high - low)


@pytest.fixture(scope="module")
def server(epics: Epics, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server, over both protocols, for the read and write tests."""
    server = start_server(epics, serve_command("both"), tmp_path_factory.mktemp("serve"))
    yield server
    code, _, err = server.stop()
    assert code == 0, err


@pytest.fixture(scope="module")
def pva(epics: Epics, server: Server) -> Iterator[Context]:
    ctx = Context("pva", conf=epics.pva_client_conf(), useenv=False)
    yield ctx
    ctx.close()


def get_outputs(ctx: Context) -> dict:
    values = ctx.get([PREFIX + name for name in OUTPUTS], timeout=10)
    return dict(zip(OUTPUTS, values, strict=True))


@pytest.mark.slow
def test_banner_lists_every_pv_with_its_access(server: Server) -> None:
    assert server.banner[-1] == "serving over PVAccess and Channel Access; Ctrl-C stops"
    listed = dict(line.split() for line in server.banner[:-1])
    assert listed == {
        PREFIX + name: "read-only" if var.read_only else "read-write"
        for name, var in MODEL.supported_variables.items()
    }


@pytest.mark.slow
def test_pva_reads_every_variable_with_units_and_limits(pva: Context) -> None:
    pva.put(PREFIX + FIRST.name, FIRST.default_value, wait=True, timeout=10)
    expected = expected_outputs()
    for name in SCALAR_OUTPUTS:
        value = pva.get(PREFIX + name, timeout=10)
        assert float(value) == float(expected[name]), name
        assert value.raw.display.units == (OUTPUTS[name].unit or "")
        assert value.severity == 0
    for name, var in INPUTS.items():
        value = pva.get(PREFIX + name, timeout=10)
        assert float(value) == var.default_value
        assert value.raw.display.units == (var.unit or "")
        if var.value_range is not None:
            low, high = var.value_range
            assert (value.raw.control.limitLow, value.raw.control.limitHigh) == (low, high)
            assert (value.raw.display.limitLow, value.raw.display.limitHigh) == (low, high)


@pytest.mark.slow
def test_pva_put_updates_every_output_to_the_model_values(pva: Context) -> None:
    before = get_outputs(pva)
    value = inside(FIRST, 0.37)
    pva.put(PREFIX + FIRST.name, value, wait=True, timeout=10)
    after = get_outputs(pva)
    expected = expected_outputs(**{FIRST.name: value})
    for name in SCALAR_OUTPUTS:
        assert float(after[name]) == float(expected[name]), name
    for name in ARRAY_OUTPUTS:
        np.testing.assert_array_equal(np.asarray(after[name]), expected[name])
    assert any(float(after[n]) != float(before[n]) for n in SCALAR_OUTPUTS), "nothing changed"
    assert float(pva.get(PREFIX + FIRST.name, timeout=10)) == value


@pytest.mark.slow
def test_pva_out_of_range_put_is_refused_and_changes_nothing(pva: Context) -> None:
    pva.put(PREFIX + FIRST.name, inside(FIRST, 0.25), wait=True, timeout=10)
    before = get_outputs(pva)
    low, high = FIRST.value_range
    bad = high + (high - low)
    with pytest.raises(RemoteError) as refused:
        pva.put(PREFIX + FIRST.name, bad, wait=True, timeout=10)
    # The message of the refusal the Python API gives for the same value (one validation path).
    with pytest.raises(ValueError) as direct:
        MyPackageModel().set({FIRST.name: bad})
    assert str(refused.value) == str(direct.value)
    assert FIRST.name in str(refused.value) and f"{bad:g}" in str(refused.value)
    assert float(pva.get(PREFIX + FIRST.name, timeout=10)) == inside(FIRST, 0.25)
    after = get_outputs(pva)
    for name in SCALAR_OUTPUTS:
        assert float(after[name]) == float(before[name]), name
        assert after[name].timestamp == before[name].timestamp, f"{name} was republished"
    for name in ARRAY_OUTPUTS:
        np.testing.assert_array_equal(np.asarray(after[name]), np.asarray(before[name]))


@pytest.mark.slow
def test_pva_output_put_is_refused(pva: Context) -> None:
    name = SCALAR_OUTPUTS[0]
    before = float(pva.get(PREFIX + name, timeout=10))
    with pytest.raises(RemoteError, match="Read only"):
        pva.put(PREFIX + name, before + 1.0, wait=True, timeout=10)
    assert float(pva.get(PREFIX + name, timeout=10)) == before


@pytest.mark.slow
@pytest.mark.parametrize("name", ARRAY_OUTPUTS)  # none for a model without array outputs
def test_pva_array_output_arrives_with_its_shape(pva: Context, name: str) -> None:
    value = inside(FIRST, 0.6)
    pva.put(PREFIX + FIRST.name, value, wait=True, timeout=10)
    array = pva.get(PREFIX + name, timeout=10)
    assert array.shape == tuple(OUTPUTS[name].shape)
    np.testing.assert_array_equal(np.asarray(array), expected_outputs(**{FIRST.name: value})[name])


@pytest.fixture(scope="module")
def ca(epics: Epics, server: Server) -> Iterator[object]:
    # pyepics' libca reads its configuration from the environment once, when first used.
    saved = {k: os.environ.get(k) for k in epics.env}
    os.environ.update({k: v for k, v in epics.env.items() if k.startswith("EPICS_CA_")})
    import epics as pyepics

    yield pyepics
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def ca_get(ca: object, name: str) -> object:
    pv = ca.get_pv(PREFIX + name, connect=True, timeout=10)
    assert pv.wait_for_connection(timeout=10), f"{PREFIX + name} did not connect"
    return pv


@pytest.mark.slow
def test_ca_put_updates_outputs_and_refuses_out_of_range(ca: object) -> None:
    first = ca_get(ca, FIRST.name)
    value = inside(FIRST, 0.37)
    assert first.put(value, wait=True, timeout=10) == 1
    expected = expected_outputs(**{FIRST.name: value})
    for name in SCALAR_OUTPUTS:
        pv = ca_get(ca, name)
        assert pv.get(use_monitor=False, timeout=10) == float(expected[name]), name
        assert pv.get_ctrlvars(timeout=10)["units"] == (OUTPUTS[name].unit or "")
    for name in ARRAY_OUTPUTS:  # a waveform: the flattened array
        got = ca_get(ca, name).get(use_monitor=False, timeout=10)
        np.testing.assert_array_equal(got, np.ravel(expected[name]))
    ctrl = first.get_ctrlvars(timeout=10)
    assert (ctrl["lower_ctrl_limit"], ctrl["upper_ctrl_limit"]) == tuple(FIRST.value_range)

    low, high = FIRST.value_range
    # Channel Access cannot fail a put: the put "succeeds", the model refuses the value, and
    # the input keeps its value with a WRITE/INVALID alarm; no output changes.
    assert first.put(high + (high - low), wait=True, timeout=10) == 1
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and first.get_ctrlvars(timeout=10)["severity"] == 0:
        time.sleep(0.05)
    ctrl = first.get_ctrlvars(timeout=10)
    assert (ctrl["severity"], ctrl["status"]) == (3, 2)  # INVALID, WRITE
    assert first.get(use_monitor=False, timeout=10) == value
    for name in SCALAR_OUTPUTS:
        got = ca_get(ca, name).get(use_monitor=False, timeout=10)
        assert got == float(expected[name]), name


@pytest.mark.slow
def test_ca_output_put_is_refused(ca: object) -> None:
    pv = ca_get(ca, SCALAR_OUTPUTS[0])
    before = pv.get(use_monitor=False, timeout=10)
    pv.put(before + 1.0, wait=True, timeout=10)
    assert pv.get(use_monitor=False, timeout=10) == before


@pytest.mark.slow
@pytest.mark.parametrize(
    ("protocol", "signum"), [("pva", signal.SIGINT), ("ca", signal.SIGTERM)], ids=["pva", "ca"]
)
def test_one_protocol_serves_only_it_and_a_signal_stops_cleanly(
    epics: Epics, tmp_path: Path, protocol: str, signum: int
) -> None:
    """Ctrl-C (SIGINT) and `docker stop` (SIGTERM) both end the server with exit code 0."""
    # Ports of its own: the module's server may still hold the shared ones.
    env = Epics(
        {
            **epics.env,
            **pva_env(),
            "EPICS_CA_SERVER_PORT": str(free_tcp_udp_port()),
            # The prefix from the setting this time, not from --prefix.
            "MY_PACKAGE_PV_PREFIX": PREFIX,
        }
    )
    server = start_server(env, serve_command(protocol, prefix=None), tmp_path)
    assert server.banner[0].startswith(PREFIX)
    assert server.banner[-1] == f"serving over {TRANSPORTS[protocol]}; Ctrl-C stops"
    ctx = Context("pva", conf=env.pva_client_conf(), useenv=False)
    try:
        name = PREFIX + SCALAR_OUTPUTS[0]
        if protocol == "pva":
            assert math.isfinite(float(ctx.get(name, timeout=10)))
        else:  # no PVAccess PV: a PVA get finds nothing
            with pytest.raises(TimeoutError):
                ctx.get(name, timeout=1)
    finally:
        ctx.close()
    code, out, err = server.stop(signum)
    assert code == 0, err
    assert out.strip().endswith("stopped")
    assert "Traceback" not in err


@pytest.mark.slow
def test_pva_2d_array_axis_order_and_out_of_range_alarm(epics: Epics, tmp_path: Path) -> None:
    env = Epics({**epics.env, **pva_env()})
    server = start_server(env, grid_command(), tmp_path)
    ctx = Context("pva", conf=env.pva_client_conf(), useenv=False)
    try:
        ctx.put(PREFIX + "x", 2.5, wait=True, timeout=10)
        grid = ctx.get(PREFIX + "grid", timeout=10)
        assert grid.shape == (2, 3)
        np.testing.assert_array_equal(np.asarray(grid), np.arange(6.0).reshape(2, 3) * 2.5)
        assert ctx.get(PREFIX + "x", timeout=10).severity == 0
        ctx.put(PREFIX + "x", 12.0, wait=True, timeout=10)  # outside [0, 10], accepted
        assert ctx.get(PREFIX + "x", timeout=10).severity == 2  # MAJOR
    finally:
        ctx.close()
        code, _, err = server.stop()
    assert code == 0, err


@pytest.mark.slow
def test_pva_reset_restores_the_defaults(pva: Context) -> None:
    pva.put(PREFIX + FIRST.name, inside(FIRST, 0.8), wait=True, timeout=10)
    pva.put(PREFIX + "RESET", 1, wait=True, timeout=10)
    deadline = time.monotonic() + 10  # the reset is queued: its put returns before it runs
    while time.monotonic() < deadline:
        if float(pva.get(PREFIX + FIRST.name, timeout=10)) == FIRST.default_value:
            break
        time.sleep(0.05)
    assert float(pva.get(PREFIX + FIRST.name, timeout=10)) == FIRST.default_value
    expected = expected_outputs()
    after = get_outputs(pva)
    for name in SCALAR_OUTPUTS:
        assert float(after[name]) == float(expected[name]), name


def test_help_imports_neither_epics_nor_lume() -> None:
    code = (
        "import sys\nfrom my_package.cli import main\n"
        "for argv in (['--help'], ['serve', '--help']):\n"
        "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
        "heavy = {'p4p', 'pcaspy', 'lume', 'lume_pva_apg', 'epicscorelibs', 'pvxslibs'}\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "--protocol {pva,ca,both}" in out.stdout
    assert out.stdout.strip().endswith("[]")


def test_serve_without_the_online_extra_says_how_to_install_it() -> None:
    # The extra made unimportable in this one process, as in an install without it.
    code = (
        "import sys\nsys.modules['lume_pva_apg'] = None\nfrom my_package.cli import main\n"
        "sys.exit(main(['serve']))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: serving needs the 'online' extra")
    assert "pip install 'my-package[online]'" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert proc.stdout == ""
