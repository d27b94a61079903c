"""The command line's scan text, ``START:STOP:NUM``, and the grid-size guard: no heavy imports.

The CLI checks these before it imports numpy or lume, so a mistake in a scan is refused
in a fraction of a second; validation.ScanRange uses the same rules.
"""

import math
from collections.abc import Iterable

from my_package.errors import InputValidationError

# A guard against a scan that would not fit in memory (10^7 points x 8 variables
# x 8 bytes is 640 MB); raise it if your machine and model allow more.
MAX_SCAN_POINTS = 10_000_000


def parse_scan(text: str, label: str | None = None) -> tuple[float, float, int]:
    """``START:STOP:NUM`` as numbers; errors in plain words.

    ``label`` starts an error message (default ``scan 'TEXT'``), e.g. the option.
    """
    label = label or f"scan {text!r}"
    parts = [part.strip() for part in text.split(":")]
    if len(parts) != 3:
        raise InputValidationError(f"{label} is not START:STOP:NUM, e.g. 0.1:2.0:50")
    bounds = []
    for name, part in zip(("START", "STOP"), parts[:2], strict=True):
        try:
            bounds.append(float(part))
        except ValueError:
            bounds.append(math.nan)
        if not math.isfinite(bounds[-1]):
            raise InputValidationError(f"{label}: {name} {part!r} must be a finite number")
    num = parts[2]
    if not num.isdigit() or not 1 <= int(num) <= MAX_SCAN_POINTS:
        raise InputValidationError(
            f"{label}: NUM {num!r} must be a whole number from 1 to {MAX_SCAN_POINTS:,}"
        )
    return bounds[0], bounds[1], int(num)


def check_grid_size(nums: Iterable[int]) -> None:
    """Refuse a grid of more than MAX_SCAN_POINTS points, before anything is allocated.

    The product is a Python int: no overflow, whatever the sizes (numpy's would wrap).
    """
    nums = list(nums)
    total = math.prod(nums)
    if total > MAX_SCAN_POINTS:
        sizes = " x ".join(f"{num:,}" for num in nums)
        raise InputValidationError(
            f"the scan has {sizes} = {total:,} points, more than {MAX_SCAN_POINTS:,}; "
            "use fewer points per variable (or raise MAX_SCAN_POINTS in scan_text.py)"
        )
