"""A deterministic abdominal CT phantom in Hounsfield units, and its slice geometry.

The phantom is defined in patient coordinates (mm, LPS), so any matrix size shows the
same anatomy: body with subcutaneous fat, liver with a spherical tumour, spleen,
kidneys, aorta and a vertebra. Enhancement follows the phase (N, A, P, D).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np

FIELD_OF_VIEW_MM = 350.0
SLICE_THICKNESS_MM = 5.0
FIRST_SLICE_Z_MM = -120.0
TUMOUR_CENTRE_MM = (-80.0, -15.0, FIRST_SLICE_Z_MM - 3.5 * SLICE_THICKNESS_MM)
TUMOUR_RADIUS_MM = 15.0

# HU by phase: N (plain), A (arterial), P (portal venous), D (delayed).
_ENHANCEMENT: dict[str, dict[str, float]] = {
    "liver": {"N": 55, "A": 70, "P": 115, "D": 95},
    "tumour": {"N": 35, "A": 140, "P": 75, "D": 55},
    "aorta": {"N": 40, "A": 320, "P": 170, "D": 120},
    "kidney": {"N": 30, "A": 160, "P": 180, "D": 200},
    "spleen": {"N": 45, "A": 110, "P": 125, "D": 100},
}


@dataclass(frozen=True)
class SliceGeometry:
    """Axial slices of a ``size`` x ``size`` matrix over a fixed field of view."""

    size: int

    @property
    def pixel_spacing(self) -> float:
        """Row and column spacing in mm."""
        return FIELD_OF_VIEW_MM / self.size

    def z(self, index: int) -> float:
        """Table position of slice ``index`` (slices go caudally, 5 mm apart)."""
        return FIRST_SLICE_Z_MM - index * SLICE_THICKNESS_MM

    def position(self, index: int) -> tuple[float, float, float]:
        """Image Position (Patient): the centre of the first pixel."""
        corner = -FIELD_OF_VIEW_MM / 2 + self.pixel_spacing / 2
        return (corner, corner, self.z(index))

    def grid(self) -> tuple[np.ndarray, np.ndarray]:
        """Patient x (columns) and y (rows) of every pixel centre, in mm."""
        x0, y0, _ = self.position(0)
        axis = np.arange(self.size, dtype=np.float64) * self.pixel_spacing
        return np.meshgrid(x0 + axis, y0 + axis)


def _ellipse(x: np.ndarray, y: np.ndarray, cx: float, cy: float, a: float, b: float) -> np.ndarray:
    return ((x - cx) / a) ** 2 + ((y - cy) / b) ** 2 <= 1.0


def tumour_radius_at(z: float) -> float | None:
    """Radius of the tumour's cross-section at table position ``z``; None if missed."""
    dz = z - TUMOUR_CENTRE_MM[2]
    if abs(dz) >= TUMOUR_RADIUS_MM:
        return None
    return math.sqrt(TUMOUR_RADIUS_MM**2 - dz**2)


def tumour_outline(z: float, points: int = 24) -> list[tuple[float, float, float]]:
    """Closed planar outline of the tumour at ``z`` in patient coordinates (may be empty)."""
    radius = tumour_radius_at(z)
    if radius is None:
        return []
    cx, cy, _ = TUMOUR_CENTRE_MM
    return [
        (round(cx + radius * math.cos(t), 3), round(cy + radius * math.sin(t), 3), z)
        for t in (2 * math.pi * k / points for k in range(points))
    ]


def _seed(*parts: object) -> int:
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little")


def hounsfield_slice(
    geometry: SliceGeometry, index: int, phase: str = "P", seed: object = 0, noise_hu: float = 8.0
) -> np.ndarray:
    """The phantom's slice ``index`` in HU (int16), with seeded Gaussian noise."""
    x, y = geometry.grid()
    z = geometry.z(index)
    hu = np.full(x.shape, -1000.0)
    hu[_ellipse(x, y, 0, 5, 165, 120)] = -100.0  # subcutaneous fat
    hu[_ellipse(x, y, 0, 5, 150, 105)] = 40.0  # muscle and bowel
    hu[_ellipse(x, y, -70, -10, 75, 70)] = _ENHANCEMENT["liver"][phase]
    hu[_ellipse(x, y, 95, 20, 35, 50)] = _ENHANCEMENT["spleen"][phase]
    for side in (-1, 1):
        hu[_ellipse(x, y, side * 70, 60, 25, 35)] = _ENHANCEMENT["kidney"][phase]
    hu[_ellipse(x, y, 20, 45, 11, 11)] = _ENHANCEMENT["aorta"][phase]
    hu[_ellipse(x, y, 0, 75, 21, 21)] = 700.0  # cortical bone
    hu[_ellipse(x, y, 0, 75, 18, 18)] = 250.0  # cancellous bone
    hu[_ellipse(x, y, 0, 104, 8, 8)] = 20.0  # spinal canal
    radius = tumour_radius_at(z)
    if radius is not None:
        cx, cy, _ = TUMOUR_CENTRE_MM
        hu[_ellipse(x, y, cx, cy, radius, radius)] = _ENHANCEMENT["tumour"][phase]
    rng = np.random.default_rng(_seed(seed, phase, index, geometry.size))
    inside = hu > -1000
    hu[inside] += rng.normal(0.0, noise_hu, int(inside.sum()))
    result: np.ndarray = np.clip(np.rint(hu), -1024, 3071).astype(np.int16)
    return result


#: Regions :func:`region_mask` knows, as segmented by the SEG builder.
REGIONS: tuple[str, ...] = ("liver", "tumour", "vertebra")


def region_mask(geometry: SliceGeometry, index: int, region: str) -> np.ndarray:
    """Boolean mask of a phantom region on slice ``index`` (the shapes of :func:`hounsfield_slice`)."""
    x, y = geometry.grid()
    if region == "liver":
        kidney = _ellipse(x, y, -70, 60, 25, 35)
        mask: np.ndarray = _ellipse(x, y, -70, -10, 75, 70) & ~kidney
        return mask
    if region == "tumour":
        radius = tumour_radius_at(geometry.z(index))
        if radius is None:
            return np.zeros(x.shape, dtype=bool)
        cx, cy, _ = TUMOUR_CENTRE_MM
        return _ellipse(x, y, cx, cy, radius, radius)
    if region == "vertebra":
        return _ellipse(x, y, 0, 75, 21, 21)
    raise ValueError(f"region must be one of {REGIONS}, got {region!r}")


def uptake_slice(geometry: SliceGeometry, index: int, seed: object = 0) -> np.ndarray:
    """FDG activity concentration (Bq/ml, float) of slice ``index``: an avid tumour, seeded noise."""
    x, y = geometry.grid()
    activity = np.zeros(x.shape)
    activity[_ellipse(x, y, 0, 5, 165, 120)] = 1500.0  # soft tissue background
    activity[_ellipse(x, y, -70, -10, 75, 70)] = 5000.0  # liver
    activity[_ellipse(x, y, 95, 20, 35, 50)] = 4000.0  # spleen
    for side in (-1, 1):
        activity[_ellipse(x, y, side * 70, 60, 25, 35)] = 9000.0  # kidneys (excretion)
    activity[_ellipse(x, y, 20, 45, 11, 11)] = 3500.0  # blood pool
    activity[region_mask(geometry, index, "tumour")] = 25000.0
    rng = np.random.default_rng(_seed(seed, "PT", index, geometry.size))
    inside = activity > 0
    activity[inside] *= rng.normal(1.0, 0.05, int(inside.sum()))
    result: np.ndarray = np.clip(activity, 0, None)
    return result
