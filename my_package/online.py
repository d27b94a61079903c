"""Online model: the model's variables served as EPICS PVs (``python -m my_package serve``).

lume-pva (distribution ``lume-pva-apg``, extra ``online``) serves a lume-base ``LUMEModel``:
every input as a writable PV and every output as a read-only PV named ``PREFIX`` + variable
name, over PVAccess (p4p), Channel Access (pcaspy) or both. It takes units, control and
display limits (``value_range``) and alarms (a value outside its range) from the variables;
array (ND) variables are NTNDArray on PVAccess and waveforms on Channel Access.

A put to an input runs the model once through ``LUMEModel.set``, which validates it as the
Python API does. A refused put (out of range, not a number, a read-only PV) changes nothing:
the model is restored, the input PV keeps its value, no output is published, and a PVAccess
client's put fails with the validation message (Channel Access cannot report a failed put:
the input PV shows a WRITE alarm instead). Each put is its own model run (no batching
window), and the put completes only after every output PV has been updated.
"""

from __future__ import annotations

import signal
import sys
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from lume.model import LUMEModel
    from lume_pva_apg.runner import Runner

# --protocol choices, as lume-pva names the transports.
PROTOCOLS: dict[str, list[str]] = {"pva": ["pva"], "ca": ["ca"], "both": ["pva", "ca"]}
TRANSPORTS = {"pva": "PVAccess", "ca": "Channel Access"}


class OnlineError(RuntimeError):
    """The online server cannot start; the message says what to do."""


def runner_config(runner_class: type[Runner], model: LUMEModel, prefix: str, protocol: str) -> dict:
    """lume-pva's configuration: read-only variables (the outputs) as read-only PVs."""
    config = runner_class.generate_config(model, prefix)
    config.update(
        protocol=PROTOCOLS[protocol],
        # One model run per put: no batching window (lume-pva's default waits 0.1 s to
        # merge puts), so a put's latency is the model's and puts never merge.
        update_rate=0.0,
        # A refused put must leave the input PV on the last value the model accepted.
        echo_unconfirmed_writes=False,
        # Channel Access has no failed-put reply: an alarm is its only way to say so.
        alarm_on_refused_write=True,
    )
    return config


def _runner_class() -> type[Runner]:
    try:
        from lume_pva_apg.runner import Runner
    except ImportError as exc:
        raise OnlineError(
            f"serving needs the 'online' extra ({exc}); install it with "
            "pip install 'my-package[online]'"
        ) from None

    class OnlineRunner(Runner):
        """lume-pva's Runner, with NTNDArray dimensions in the order the standard defines."""

        def _pack_value(self, pv: str, value: Any, ts: float | None = None) -> Any:
            packed = super()._pack_value(pv, value, ts)
            if "dimension" in packed:
                # NTNDArray lists dimension[0] as the fastest-varying one (x, the last numpy
                # axis); lume-pva 0.5 / lume-pva-apg 0.1.5 list numpy's order, so every client
                # (p4p, pvget, image viewers) would see a (2, 3) array as (3, 2).
                shape = self.model.supported_variables[pv].shape
                packed["dimension"] = [
                    {"size": n, "fullSize": n, "binning": 1, "reverse": False, "offset": 0}
                    for n in reversed(shape)
                ]
            return packed

    return OnlineRunner


def make_runner(model: LUMEModel, prefix: str, protocol: str) -> Runner:
    """Start serving ``model`` (the servers run in their own threads); ``Runner.run`` computes."""
    runner_class = _runner_class()
    return runner_class(model, config=runner_config(runner_class, model, prefix, protocol))


def pv_table(runner: Runner) -> list[tuple[str, str]]:
    """``(PV name, 'rw' or 'ro')`` of every served variable."""
    prefix = runner.config["prefix"]
    return [
        (prefix + entry["pv"], entry["mode"])
        for name, entry in runner.config["variables"].items()
        if name in runner.pv_handlers  # lume-pva skips types it cannot serve
    ]


def _stop_on_sigterm(signum: int, frame: Any) -> None:
    # `docker stop` and process managers send SIGTERM: stop as Ctrl-C does.
    raise KeyboardInterrupt


def serve(
    model: LUMEModel,
    prefix: str,
    protocol: str,
    out: TextIO = sys.stdout,
) -> None:
    """Serve ``model`` until Ctrl-C (SIGINT) or SIGTERM, then stop the servers."""
    runner = make_runner(model, prefix, protocol)
    previous = signal.signal(signal.SIGTERM, _stop_on_sigterm)
    try:
        for name, mode in pv_table(runner):
            print(f"{name}  {'read-write' if mode == 'rw' else 'read-only'}", file=out)
        transports = " and ".join(TRANSPORTS[p] for p in PROTOCOLS[protocol])
        print(f"serving over {transports}; Ctrl-C stops", file=out, flush=True)
        runner.run()  # returns on KeyboardInterrupt
    except KeyboardInterrupt:  # Ctrl-C before the run loop started
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        runner.server.stop()
    print("stopped", file=out, flush=True)


def package_model() -> LUMEModel:
    """The package's model: a lume-base LUMEModel, which lume-pva serves."""
    from my_package.model import MyPackageModel

    return MyPackageModel()


def command_serve(prefix: str | None, protocol: str) -> int:
    """``python -m my_package serve``: the package's model online; returns the exit code."""
    from pydantic import ValidationError

    from my_package.config import Settings
    from my_package.errors import VariablesFileError

    try:
        prefix = Settings().pv_prefix if prefix is None else prefix
        _runner_class()  # a missing extra is reported before the model (and lume) loads
        serve(package_model(), prefix, protocol)
    except ValidationError as exc:
        print(f"error: invalid setting:\n{exc}", file=sys.stderr)
        return 2
    except VariablesFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OnlineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0
