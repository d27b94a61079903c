"""The model. EDIT THIS FILE: replace the placeholder in ``_evaluate`` with your physics.

This is the skeleton that ``scripts/rename.py --strip-examples`` left in place of
the template's example. Its variables (names, defaults, ranges, units) are
declared in ``files/variables.yml``; keep the two files in step: every input
there arrives in ``input_dict``, every output there must be returned.

``_evaluate`` is pure science: a dict of numbers in, a dict of numbers out. It
receives either floats (one point) or equal-length numpy arrays (a scan), so
write it with numpy operations that work on both. An array output (an NDVariable
in variables.yml) has its declared shape for one point and (N, *shape) for a scan
of N. Validation happens before and after it (``validation.py``); the class it
inherits (``lume_adapter.py``) makes it a lume-base LUMEModel.
"""

from typing import ClassVar

from my_package.lume_adapter import StatelessModel
from my_package.validation import Value


class MyPackageModel(StatelessModel):
    """Placeholder model: ``y = gain * x``. Replace it with yours.

    Usage::

        model = MyPackageModel()
        model.evaluate({"x": 2.0})                       # one point
        model.evaluate({"x": np.linspace(0, 1, 101)})    # a scan
        model.set({"x": 2.0}); model.get(["y"])          # lume-base LUMEModel
    """

    # How scans of this model run best (README: Scaling up); None: the defaults. A slow model
    # that waits on an external program wants workers (threads); a CPU-bound pure-Python one
    # processes = True. --workers, --processes, --chunk-size and --dask override these.
    chunk_size: ClassVar[int | None] = None  # points per chunk (one Prefect task each)
    workers: ClassVar[int | None] = None  # chunks evaluated at once
    processes: ClassVar[bool] = False  # worker processes instead of threads

    def _evaluate(self, input_dict: dict[str, Value]) -> dict[str, Value]:
        # Placeholder physics: replace with yours (numpy operations only, so that
        # floats and arrays both work).
        y = input_dict["gain"] * input_dict["x"]
        # With the commented profile output of variables.yml, return it too, shaped
        # (10,) for one point and (N, 10) for a scan (a trailing axis does both;
        # import numpy as np):
        #   profile = np.asarray(y)[..., np.newaxis] * np.linspace(0.0, 1.0, 10)
        return {"y": y}
