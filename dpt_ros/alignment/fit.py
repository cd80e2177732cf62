"""Online metric scale for relative depth models: robust fits of ``scale`` and ``shift``.

Relative models (DPT, MiDaS, Depth Anything) predict affine-invariant *inverse* depth
``relative`` (larger = nearer). The package turns it into metres with
``depth = 1 / (scale * relative + shift)`` (:mod:`dpt_ros.models.geometry`). This module
recovers ``scale`` and ``shift`` from the scene while the camera runs, from one of two
sources of metric information:

* :func:`fit_to_reference`: sparse metric depth registered to the image (a lidar
  projected into the camera, stereo, a depth camera), a few per cent of the pixels,
  with many wrong values (multipath, thin objects, misregistration).
* :func:`fit_ground_plane`: the camera's height above a ground plane and a mask of the
  ground pixels (from segmentation), with or without the ground's normal.

Both are linear in inverse depth, ``1 / z = scale * relative + shift``, so each is a
robust linear fit: RANSAC over minimal samples (2 pixels; 3 for the plane without a
normal), hypotheses scored with a truncated quadratic loss (MSAC), then weighted least
squares on the inliers, re-selected until they stop changing, and a second such pass
at three robust standard deviations of the inliers' residuals when that is tighter than
the threshold (so that samples just inside it, like the feet of objects on the ground,
do not pull the fit). The relative map is the dependent variable (it is regressed on
the known inverse depth, not the reverse): a monocular model's error is far larger than
a lidar's, and noise in the regressor would bias the scale low.

Residuals and the inlier threshold
----------------------------------
Residuals are measured *relative to the inverse depth*: ``e = (y_hat - y) / y`` for a
sample of known inverse depth ``y`` and predicted ``y_hat = scale * relative + shift``;
``|e|`` is, to first order, the relative depth error of that sample. The inlier
threshold (``threshold``, default ``0.1``, i.e. about 10 % depth error) is a bound on
``|e|``. A threshold on the absolute inverse-depth residual, set from the spread of
``1 / reference`` over the image, was not chosen: inverse depth compresses the far
field, so an absolute threshold that suits near points accepts any far value (a wall at
20 m and a multipath return at 60 m differ by 0.03 1/m) and one that suits far points
rejects every near point; the relative residual treats every range alike and is the
error a monocular model makes (a few per cent of the depth). The refinement minimises
the same quantity (least squares weighted by one over the inverse depth squared).

Ground plane
------------
In the camera optical frame (REP-103: x right, y down, z forward) the ground is the
plane ``n . X = -h``: ``n`` its unit normal pointing *up*, from the ground towards the
camera (a level camera has ``n = (0, -1, 0)``), and ``h > 0`` the camera's height above
it. A pixel's ray is ``r = ((u - cx)/fx, (v - cy)/fy, 1)`` and its point at depth ``z``
is ``z * r``, so a ground pixel's true inverse depth is ``1 / z = -(n . r) / h``; rays
with ``n . r >= 0`` (at or above the horizon) never meet the ground.

An affine relative map leaves one degree of freedom open on a plane:
``relative = (-(n . r) / h - shift) / scale``, and because ``r_z = 1`` the shift is
``shift * (e_z . r)``, so ``relative = w . r`` with ``w = -(n / h + shift * e_z) / scale``.
Three numbers ``w`` fix four unknowns (two for the direction of ``n``, ``scale``,
``shift``): a shift only tilts the apparent plane, and the same relative values fit a
family of normals, each with its own shift. Hence :func:`fit_ground_plane` either takes
the normal (then scale and shift follow as for a reference), or assumes ``shift = 0``
and fits ``w`` (then ``n = -w / |w|`` and ``scale = 1 / (h |w|)``; the same as fitting a
plane to the points ``r / relative``, back-projected with unit scale, and scaling it to
distance ``h``). For a level camera a shift ``t`` tilts the fitted normal by
``atan(t * h)`` towards the optical axis and leaves depths wrong by ``t / (1/z - t)``.

Errors and quality
------------------
The fits raise ``ValueError`` whenever *no* fit can be computed: arrays of the wrong
shape or type, invalid arguments, fewer than ``min_samples`` valid samples, or samples
that admit no valid hypothesis (e.g. a constant ``relative``). An :class:`Alignment`
that is returned always has a finite scale and shift, and :meth:`Alignment.quality_problems`
says whether it is good enough to use (too few inliers, too small an inlier fraction,
too large a residual, a non-positive scale). Callers running online catch the
``ValueError`` for frames without enough data, and must never publish a fit whose
``quality_problems()`` is not empty.

Deterministic: the random minimal samples come from ``rng`` (default
``numpy.random.default_rng(0)``), so equal inputs give equal fits. Pure numpy: no ROS,
no torch.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

__all__ = [
    "DEFAULT_ITERATIONS",
    "DEFAULT_MAX_SAMPLES",
    "DEFAULT_MIN_SAMPLES",
    "DEFAULT_SEED",
    "DEFAULT_THRESHOLD",
    "Alignment",
    "PinholeIntrinsics",
    "fit_ground_plane",
    "fit_to_reference",
]

DEFAULT_ITERATIONS = 200
"""RANSAC hypotheses. With half the samples wrong a 2-point sample is clean with
probability 1/4, so 200 draws all miss with probability 0.75**200 ~ 1e-25 (3 points and
half wrong: 0.875**200 ~ 2e-12)."""
DEFAULT_THRESHOLD = 0.1
"""Inlier bound on the relative inverse-depth residual ``|y - y_hat| / y`` (~ relative
depth error)."""
DEFAULT_MIN_SAMPLES = 10
"""Fewest valid samples a fit is attempted with."""
DEFAULT_MAX_SAMPLES = 10_000
"""Most samples a fit uses (a random subset beyond): ~5 ms for a reference fit."""
DEFAULT_SEED = 0
"""Seed of the generator used when ``rng`` is None."""

_SCORE_SAMPLES = 1024  # hypotheses are scored on at most this many random samples
_REFINE_ROUNDS = 10  # least-squares / re-selection rounds after RANSAC
_MAX_CONDITION = 1e8  # minimal samples worse conditioned than this are skipped
_MIN_THRESHOLD = 1e-3  # floor of the second pass's threshold (float32 inputs round ~1e-7)

Rng = np.random.Generator | int | None


class PinholeIntrinsics(Protocol):
    """Pinhole intrinsics of an image, pixels; :class:`dpt_ros.ros.camera.Intrinsics`
    is one (this module does not import it, so that it needs no ROS)."""

    @property
    def fx(self) -> float: ...
    @property
    def fy(self) -> float: ...
    @property
    def cx(self) -> float: ...
    @property
    def cy(self) -> float: ...
    @property
    def width(self) -> int: ...
    @property
    def height(self) -> int: ...


@dataclass(frozen=True)
class Alignment:
    """A fitted metric calibration ``depth = 1 / (scale * relative + shift)`` and its quality.

    Attributes:
        scale: Inverse metres per unit of relative inverse depth (> 0 for a usable fit).
        shift: Inverse metres (1/m). 0 for :func:`fit_ground_plane` without a normal.
        inliers: Samples whose relative residual is below the fit's threshold.
        inlier_fraction: ``inliers / samples``.
        residual: Median absolute inverse-depth residual of the inliers, 1/m.
        relative_residual: Median of ``|residual| / inverse depth`` over the inliers,
            dimensionless (~ the median relative depth error of the inliers).
        samples: Valid pixels the fit used (at most ``max_samples``).
        normal: Ground fits only: the ground's unit "up" normal in the camera optical
            frame (given or fitted); None for :func:`fit_to_reference`.
    """

    scale: float
    shift: float
    inliers: int
    inlier_fraction: float
    residual: float
    relative_residual: float
    samples: int
    normal: tuple[float, float, float] | None = None

    def depth(self, relative: npt.ArrayLike) -> np.ndarray:
        """Metres from relative inverse depth.

        Args:
            relative: (..., H, W) relative inverse depth, any float dtype.

        Returns:
            float32 metres of the same shape, ``1 / (scale * relative + shift)``; NaN
            where the denominator is ``<= 0`` or not finite.
        """
        denom = self.scale * np.asarray(relative, dtype=np.float64) + self.shift
        with np.errstate(divide="ignore", invalid="ignore"):
            out = np.where(np.isfinite(denom) & (denom > 0.0), 1.0 / denom, np.nan)
        return out.astype(np.float32)

    def quality_problems(
        self,
        min_inliers: int = 30,
        min_inlier_fraction: float = 0.35,
        max_relative_residual: float = 0.05,
        max_residual: float | None = None,
    ) -> list[str]:
        """Why this fit should not be used; empty when it is good.

        Args:
            min_inliers: Fewest inliers (count).
            min_inlier_fraction: Smallest ``inliers / samples``. The default accepts a
                reference with up to about 60 % wrong values.
            max_relative_residual: Largest median relative residual of the inliers. With
                the default ``threshold`` (0.1) inliers spread evenly over the band give
                0.05, i.e. no consistent fit at all.
            max_residual: Largest median inverse-depth residual of the inliers, 1/m; None
                = not checked (its right value depends on the scene's depth range).

        Returns:
            One sentence per problem.
        """
        problems = []
        if not (math.isfinite(self.scale) and math.isfinite(self.shift)):
            problems.append(f"scale {self.scale} or shift {self.shift} is not finite")
        elif self.scale <= 0.0:
            problems.append(f"scale {self.scale:.4g} <= 0: larger relative values would be farther")
        if self.inliers < min_inliers:
            problems.append(f"only {self.inliers} inliers (fewer than {min_inliers})")
        if not self.inlier_fraction >= min_inlier_fraction:
            problems.append(
                f"inlier fraction {self.inlier_fraction:.2f} is below {min_inlier_fraction:.2f} "
                f"({self.inliers} of {self.samples} samples)"
            )
        if not self.relative_residual <= max_relative_residual:
            problems.append(
                f"relative residual {self.relative_residual:.3f} exceeds {max_relative_residual:.3f}"
            )
        if max_residual is not None and not self.residual <= max_residual:
            problems.append(
                f"inverse-depth residual {self.residual:.4g} 1/m exceeds {max_residual:.4g} 1/m"
            )
        return problems


# ------------------------------------------------------------------ argument checks


def _as_image(a: npt.ArrayLike, name: str) -> np.ndarray:
    """(H, W) float64 copy-free view of a float image; ValueError otherwise."""
    arr = np.asarray(a)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (H, W) array, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(f"{name} must be a floating-point array, got dtype {arr.dtype}")
    return arr.astype(np.float64, copy=False)


def _as_mask(m: npt.ArrayLike, shape: tuple[int, ...], name: str) -> np.ndarray:
    """(H, W) bool mask from a bool or integer array (nonzero = True); ValueError otherwise."""
    arr = np.asarray(m)
    if arr.shape != shape:
        raise ValueError(f"{name} has shape {arr.shape} but relative has shape {shape}")
    if not (arr.dtype == np.bool_ or np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"{name} must be a bool (or integer) mask, got dtype {arr.dtype}")
    return arr.astype(bool, copy=False)


@dataclass(frozen=True)
class _Settings:
    """The fits' validated options (see their ``Args``)."""

    rng: np.random.Generator
    iterations: int
    threshold: float
    min_samples: int
    max_samples: int

    @classmethod
    def make(
        cls, rng: Rng, iterations: int, threshold: float, min_samples: int, max_samples: int
    ) -> _Settings:
        """Check the options; ValueError naming the first that is invalid."""
        if int(iterations) != iterations or iterations < 1:
            raise ValueError(f"iterations must be an integer >= 1, got {iterations!r}")
        if not (math.isfinite(threshold) and threshold > 0.0):
            raise ValueError(f"threshold must be a finite relative residual > 0, got {threshold}")
        if int(min_samples) != min_samples or min_samples < 3:
            raise ValueError(f"min_samples must be an integer >= 3, got {min_samples!r}")
        if int(max_samples) != max_samples or max_samples < min_samples:
            raise ValueError(
                f"max_samples must be an integer >= min_samples ({min_samples}), got {max_samples!r}"
            )
        if not isinstance(rng, np.random.Generator):
            rng = np.random.default_rng(DEFAULT_SEED if rng is None else int(rng))
        return cls(rng, int(iterations), float(threshold), int(min_samples), int(max_samples))

    def pick(self, n: int, what: str) -> np.ndarray:
        """Indices of the samples to fit: all ``n``, or ``max_samples`` random ones.

        Raises:
            ValueError: ``n < min_samples``; the message says what was counted (``what``).
        """
        if n < self.min_samples:
            raise ValueError(f"only {n} {what}; at least {self.min_samples} are needed for a fit")
        if n <= self.max_samples:
            return np.arange(n)
        return np.sort(self.rng.choice(n, self.max_samples, replace=False))


# ------------------------------------------------------------------ robust estimator
#
# Every fit is a linear model of the *relative* value, the noisy quantity (a monocular
# model's error is far larger than a lidar's): ``x ~ a @ theta``, where the columns of
# ``a`` flagged ``proportional`` carry the inverse depth and the others a constant. The
# relative residual of a sample is ``(x - a @ theta) / (a_p @ theta_p)``: the residual
# divided by the predicted inverse depth in relative units, i.e. ~ its relative depth
# error. Regressing x on the known inverse depth (rather than the reverse) keeps the
# noise in the dependent variable, so least squares is not biased towards a smaller
# scale by it.


def _relative_residuals(
    an: np.ndarray, x: np.ndarray, thetas: np.ndarray, proportional: np.ndarray
) -> np.ndarray:
    """(n, m) relative residuals of m hypotheses; inf where the predicted inverse depth
    is not positive.

    Args:
        an: (n, k) design matrix.
        x: (n,) relative values.
        thetas: (k, m) hypotheses.
        proportional: (k,) bool, the columns proportional to inverse depth.
    """
    denom = an[:, proportional] @ thetas[proportional]
    err = x[:, None] - an @ thetas
    return np.divide(err, denom, out=np.full_like(err, np.inf), where=denom > 0.0)


def _hypotheses(
    an: np.ndarray, x: np.ndarray, rng: np.random.Generator, iterations: int
) -> np.ndarray:
    """Exact solutions of ``an[s] @ theta = x[s]`` for random minimal samples ``s``.

    Args:
        an: (n, k) design matrix (columns scaled to unit RMS).
        x: (n,) relative values.
        rng: Source of the samples.
        iterations: Minimal samples drawn.

    Returns:
        (m, k) parameter vectors, m <= iterations (degenerate samples dropped).
    """
    n, k = an.shape
    idx = rng.integers(0, n, size=(iterations, k))
    system = an[idx]  # (iterations, k, k)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        cond = np.linalg.cond(system)
    ok = np.isfinite(cond) & (cond < _MAX_CONDITION)
    if not np.any(ok):
        return np.empty((0, k))
    return np.linalg.solve(system[ok], x[idx][ok][..., None])[..., 0]


def _refine(
    an: np.ndarray, x: np.ndarray, proportional: np.ndarray, theta: np.ndarray, threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted least squares on the inliers, re-selected until nothing changes.

    Each round weights the inliers by one over their predicted inverse depth (so it
    minimises the relative residuals; iteratively reweighted where that depends on
    ``theta``) and re-selects the inliers under the new parameters.

    Args:
        an: (n, k) design matrix.
        x: (n,) relative values.
        proportional: (k,) bool, the columns proportional to inverse depth.
        theta: (k,) starting parameters.
        threshold: Inlier bound on the relative residual.

    Returns:
        ``(theta, inliers)``: (k,) parameters and the (n,) bool inliers under them.
    """
    k = an.shape[1]
    inliers = np.abs(_relative_residuals(an, x, theta[:, None], proportional)[:, 0]) < threshold
    for _ in range(_REFINE_ROUNDS):
        if int(inliers.sum()) <= k:
            break
        d = an[inliers][:, proportional] @ theta[proportional]
        candidate = np.linalg.lstsq(an[inliers] / d[:, None], x[inliers] / d, rcond=None)[0]
        err = _relative_residuals(an, x, candidate[:, None], proportional)[:, 0]
        new = np.abs(err) < threshold
        if int(new.sum()) <= k:
            break
        done = np.array_equal(new, inliers) and np.allclose(candidate, theta, rtol=1e-10)
        theta, inliers = candidate, new
        if done:
            break
    return theta, inliers


def _robust_fit(
    a: np.ndarray,
    x: np.ndarray,
    proportional: np.ndarray,
    opts: _Settings,
    accept: Callable[[np.ndarray], np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    """Robust ``x ~ a @ theta`` minimising the relative residuals (see above).

    Args:
        a: (n, k) design matrix.
        x: (n,) relative values.
        proportional: (k,) bool, the columns proportional to inverse depth.
        opts: Random source, minimal samples drawn and inlier threshold.
        accept: (m, k) hypotheses -> (m,) bool, those that are physically valid.

    Returns:
        ``(theta, inliers)``: (k,) parameters and (n,) bool inliers.

    Raises:
        ValueError: No minimal sample gave a valid hypothesis (degenerate data).
    """
    rng, threshold = opts.rng, opts.threshold
    norm = np.sqrt(np.mean(a * a, axis=0))  # unit-RMS columns, for the conditioning
    norm[norm == 0.0] = 1.0
    an = a / norm
    thetas = _hypotheses(an, x, rng, opts.iterations)
    thetas = thetas[np.all(np.isfinite(thetas), axis=1)]
    thetas = thetas[accept(thetas / norm)]
    if len(thetas) == 0:
        raise ValueError(
            "no valid hypothesis: the samples are degenerate (e.g. the target inverse "
            "depth does not vary over them, or no minimal sample gives a positive scale)"
        )
    n = an.shape[0]
    pick = slice(None) if n <= _SCORE_SAMPLES else rng.choice(n, _SCORE_SAMPLES, replace=False)
    err = _relative_residuals(an[pick], x[pick], thetas.T, proportional)  # (s, m)
    cost = np.minimum(err * err, threshold * threshold).sum(axis=0)
    best = thetas[int(np.argmin(cost))]
    theta, inliers = _refine(an, x, proportional, best, threshold)
    # Second pass at ~3 sigma of the inliers' own spread, when that is tighter: samples
    # just inside the threshold (an object's foot on the ground, a reference value a
    # few per cent off) no longer pull the fit.
    err = _relative_residuals(an[inliers], x[inliers], theta[:, None], proportional)
    tight = 3.0 * 1.4826 * float(np.median(np.abs(err))) if err.size else threshold
    if tight < threshold:
        theta, _ = _refine(an, x, proportional, theta, max(tight, _MIN_THRESHOLD))
        err = _relative_residuals(an, x, theta[:, None], proportional)
        inliers = np.abs(err[:, 0]) < threshold
    return theta / norm, inliers


def _summarise(
    x: np.ndarray,
    y: np.ndarray,
    scale: float,
    shift: float,
    inliers: np.ndarray,
    normal: tuple[float, float, float] | None,
) -> Alignment:
    """The :class:`Alignment` of a fit ``y ~ scale * x + shift``.

    Args:
        x: (n,) relative inverse depth of the samples.
        y: (n,) target inverse depth of the samples, 1/m.
        scale, shift: The fit.
        inliers: (n,) bool inliers of the fit.
        normal: Ground normal of a ground fit, else None.
    """
    n_in = int(inliers.sum())
    err = np.abs(y[inliers] - (scale * x[inliers] + shift))
    residual = float(np.median(err)) if n_in else math.inf
    relative = float(np.median(err / np.abs(y[inliers]))) if n_in else math.inf
    return Alignment(
        scale=float(scale),
        shift=float(shift),
        inliers=n_in,
        inlier_fraction=n_in / max(x.size, 1),
        residual=residual,
        relative_residual=relative,
        samples=int(x.size),
        normal=normal,
    )


def _fit_affine(x: np.ndarray, y: np.ndarray, opts: _Settings) -> tuple[float, float, np.ndarray]:
    """Robust ``y = scale * x + shift``, fitted as ``x = (y - shift) / scale``.

    Args:
        x: (n,) relative values.
        y: (n,) known inverse depth, 1/m, all > 0.
        opts: The fit's options.

    Returns:
        ``(scale, shift, inliers)``, inliers (n,) bool.
    """
    a = np.stack([y, np.ones_like(y)], axis=1)  # x = a0 * y + a1
    theta, inliers = _robust_fit(a, x, np.array([True, False]), opts, lambda t: t[:, 0] > 0.0)
    return 1.0 / float(theta[0]), -float(theta[1]) / float(theta[0]), inliers


# ------------------------------------------------------------------ public fits


def fit_to_reference(
    relative: npt.ArrayLike,
    reference_depth: npt.ArrayLike,
    valid: npt.ArrayLike | None = None,
    *,
    rng: Rng = None,
    iterations: int = DEFAULT_ITERATIONS,
    threshold: float = DEFAULT_THRESHOLD,
    min_samples: int = DEFAULT_MIN_SAMPLES,
    max_samples: int = DEFAULT_MAX_SAMPLES,
) -> Alignment:
    """Fit ``1 / reference = scale * relative + shift`` robustly over the known pixels.

    Args:
        relative: (H, W) float relative inverse depth (larger = nearer).
        reference_depth: (H, W) float metric depth, metres, registered to ``relative``
            (the same pixel grid: the caller resizes a reference of another resolution
            with nearest-neighbour interpolation, never a smoothing one, which would
            blend depths across edges and with the unknowns). NaN, inf or ``<= 0`` =
            unknown; it may be very sparse (a few per cent of the pixels) and up to
            about half its values may be wrong.
        valid: Optional (H, W) bool mask of the pixels that may be used (e.g. not
            saturated, not the robot's own body).
        rng: Generator (advanced by the fit) or seed of the random samples; None =
            seed ``DEFAULT_SEED``.
        iterations: RANSAC minimal samples (pairs of pixels).
        threshold: Inlier bound on ``|1/ref - (scale*relative + shift)| * ref`` (~ the
            relative depth error), see the module docstring.
        min_samples: Fewest valid pixels a fit is attempted with.
        max_samples: Most pixels fitted; a random subset of this many when there are
            more (bounds the time a fit takes).

    Returns:
        The fit; check :meth:`Alignment.quality_problems` before using it.

    Raises:
        ValueError: Not 2-D float arrays, shapes that differ, invalid options, fewer
            than ``min_samples`` pixels with a finite ``relative`` and a valid
            reference, or degenerate samples (``relative`` constant over them).
    """
    opts = _Settings.make(rng, iterations, threshold, min_samples, max_samples)
    rel = _as_image(relative, "relative")
    ref = _as_image(reference_depth, "reference_depth")
    if ref.shape != rel.shape:
        raise ValueError(
            f"reference_depth has shape {ref.shape} but relative has shape {rel.shape}; "
            "resize the reference to the relative map with nearest-neighbour interpolation"
        )
    with np.errstate(invalid="ignore"):
        keep = np.isfinite(rel) & np.isfinite(ref) & (ref > 0.0)
    if valid is not None:
        keep &= _as_mask(valid, rel.shape, "valid")
    x, y = rel[keep], 1.0 / ref[keep]
    pick = opts.pick(x.size, "pixels with a valid reference depth")
    x, y = x[pick], y[pick]
    scale, shift, inliers = _fit_affine(x, y, opts)
    return _summarise(x, y, scale, shift, inliers, None)


def _ground_rays(
    rel: np.ndarray, intrinsics: PinholeIntrinsics, mask: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Relative values and rays of the masked pixels with a finite relative value.

    Returns:
        ``(x, rays)``: (n,) relative inverse depth and (n, 3) rays
        ``((u - cx) / fx, (v - cy) / fy, 1)`` (optical frame, z = 1).
    """
    if (intrinsics.width, intrinsics.height) != (rel.shape[1], rel.shape[0]):
        raise ValueError(
            f"relative is {rel.shape[1]}x{rel.shape[0]} (WxH) but the intrinsics are for "
            f"{intrinsics.width}x{intrinsics.height}; rescale them with "
            "intrinsics.scaled(width, height)"
        )
    v, u = np.nonzero(mask & np.isfinite(rel))
    rays = np.stack(
        [(u - intrinsics.cx) / intrinsics.fx, (v - intrinsics.cy) / intrinsics.fy, np.ones(u.size)],
        axis=1,
    )
    return rel[v, u], rays


def _unit_normal(normal: npt.ArrayLike) -> np.ndarray:
    n = np.asarray(normal, dtype=np.float64)
    length = float(np.linalg.norm(n)) if n.shape == (3,) else 0.0
    if not (math.isfinite(length) and length > 0.0):
        raise ValueError(f"normal must be a finite non-zero 3-vector, got {normal!r}")
    return n / length


def _as_tuple3(n: np.ndarray) -> tuple[float, float, float]:
    return float(n[0]), float(n[1]), float(n[2])


def _fit_plane_known_normal(
    x: np.ndarray,
    rays: np.ndarray,
    height: float,
    normal: np.ndarray,
    opts: _Settings,
) -> Alignment:
    """Scale and shift from the plane's inverse depth ``-(n . r) / h`` along each ray.

    A plane's normal has two signs, and the camera is above the ground: the normal meant
    points from the ground towards the camera. A normal given pointing down leaves no
    masked pixel below its horizon; it is then turned (a normal whose horizon leaves
    enough pixels below it is taken as given: the mask may hold sky too).
    """
    facing = rays @ normal
    below_given = np.count_nonzero(facing < 0.0)
    if below_given < opts.min_samples and np.count_nonzero(facing > 0.0) > below_given:
        normal = -normal
    y = -(rays @ normal) / height
    below = y > 0.0  # rays that meet the plane in front of the camera
    idx = np.flatnonzero(below)
    idx = idx[opts.pick(idx.size, "ground pixels below the horizon of the given normal")]
    x, y = x[idx], y[idx]
    scale, shift, inliers = _fit_affine(x, y, opts)
    return _summarise(x, y, scale, shift, inliers, _as_tuple3(normal))


def _fit_plane_free(
    x: np.ndarray,
    rays: np.ndarray,
    height: float,
    opts: _Settings,
) -> Alignment:
    """Scale and normal with shift 0: ``relative = w . r``, ``w = -n / (scale * h)``."""
    pos = x > 0.0  # with shift 0, relative is proportional to inverse depth
    idx = np.flatnonzero(pos)
    idx = idx[opts.pick(idx.size, "ground pixels with a positive relative value")]
    x, rays = x[idx], rays[idx]
    proportional = np.ones(3, dtype=bool)
    w, inliers = _robust_fit(rays, x, proportional, opts, lambda t: np.linalg.norm(t, axis=1) > 0.0)
    length = float(np.linalg.norm(w))
    normal = -w / length
    scale = 1.0 / (height * length)
    y = -(rays @ normal) / height  # the fitted plane's inverse depth along each ray
    return _summarise(x, y, scale, 0.0, inliers, _as_tuple3(normal))


def fit_ground_plane(
    relative: npt.ArrayLike,
    intrinsics: PinholeIntrinsics,
    camera_height: float,
    mask: npt.ArrayLike,
    normal: npt.ArrayLike | None = None,
    *,
    rng: Rng = None,
    iterations: int = DEFAULT_ITERATIONS,
    threshold: float = DEFAULT_THRESHOLD,
    min_samples: int = DEFAULT_MIN_SAMPLES,
    max_samples: int = DEFAULT_MAX_SAMPLES,
) -> Alignment:
    """Fit the calibration from a ground plane a known height below the camera.

    See "Ground plane" in the module docstring for the geometry and the conventions.
    With ``normal``, each ground pixel's inverse depth ``-(n . r) / h`` is known, and
    scale and shift are fitted as in :func:`fit_to_reference`; mask pixels at or above
    the plane's horizon are not used. Without it, ``shift = 0`` is *assumed* (an affine
    map leaves one degree of freedom open on a plane), and scale and normal are fitted
    from the pixels with ``relative > 0``; if the model's shift is not 0 the fit is
    still consistent but tilted and its depths wrong, so pass the normal (from an IMU
    and the camera's mounting) whenever it is known.

    Args:
        relative: (H, W) float relative inverse depth (larger = nearer).
        intrinsics: Pinhole intrinsics of an image of exactly (H, W).
        camera_height: Height of the optical centre above the ground, metres (> 0).
        mask: (H, W) bool ground pixels (may include some that are not ground).
        normal: Optional (3,) ground normal pointing up, optical frame (normalised here).
        rng: Generator (advanced by the fit) or seed of the random samples; None =
            seed ``DEFAULT_SEED``.
        iterations: RANSAC minimal samples.
        threshold: Inlier bound on the relative inverse-depth residual.
        min_samples: Fewest usable ground pixels a fit is attempted with.
        max_samples: Most pixels fitted; a random subset of this many when there are
            more (bounds the time a fit takes).

    Returns:
        The fit, with ``normal`` set (given or fitted); check
        :meth:`Alignment.quality_problems` before using it.

    Raises:
        ValueError: Wrong shapes or dtypes, intrinsics of another image size, a height
            that is not finite and > 0, an invalid normal or option, fewer than
            ``min_samples`` usable ground pixels, or degenerate samples.
    """
    opts = _Settings.make(rng, iterations, threshold, min_samples, max_samples)
    rel = _as_image(relative, "relative")
    ground = _as_mask(mask, rel.shape, "mask")
    height = float(camera_height)
    if not (math.isfinite(height) and height > 0.0):
        raise ValueError(f"camera_height must be finite and > 0 metres, got {camera_height}")
    x, rays = _ground_rays(rel, intrinsics, ground)
    if normal is None:
        return _fit_plane_free(x, rays, height, opts)
    return _fit_plane_known_normal(x, rays, height, _unit_normal(normal), opts)
