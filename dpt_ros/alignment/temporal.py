"""Online temporal stabilisation of per-frame depth: fit each frame, filter the fits.

Per-frame depth networks flicker: a relative model is right only up to a scale and a
shift of its own in every frame, so one wall comes out nearer or farther from frame to
frame, and metric models drift in scale too. :class:`TemporalStabilizer` removes that
per-frame jitter from one camera stream, online, by mapping each frame through a global
map (``a * x + b`` of inverse depth in ``mode="affine"``, ``a * x`` of depth in
``mode="scale"``) whose parameters are filtered over time. Pixels are never averaged
over time: that would smear everything that moves.

Design
------
Per frame ``x_t`` (samples on a fixed grid of pixels, see below):

1. **Fit to the reference.** A robust weighted least-squares fit ``P_t`` of ``x_t`` to
   a reference ``R`` of the scene on the same pixels, in the last output's units,
   started from the best of a few informed starts (the two frames' quartiles matched,
   global statistics that small motion hardly moves; the previous frame's map; the
   median per-pixel ratio), then iteratively re-selecting the inliers: pixels whose
   residual relative to ``R`` is below ``threshold`` (the convention of
   :func:`dpt_ros.alignment.fit_to_reference`: about the relative depth error),
   weighted by the model's confidence where it has one. Pixels that moved (an object
   crossing, the borders of objects while the camera moves) disagree and drop out.
   While nothing moves, ``R`` is the per-pixel mean of the mapped frames since it
   started (pixel noise averages out, and every frame is fitted to the same scene, so
   fit errors, and their bias under pixel noise, do not add up from frame to frame);
   pixels that disagree with it, and every pixel while the camera moves, take the new
   frame's value. ``P_t`` composed with the last output's level gives ``T_t``, the map
   of frame ``t`` into the units of the stream's first frame. ``T_t`` holds the
   network's per-frame jitter (white: independent between frames) and the real change
   of the scene as the camera moves (smooth in time); a fit cannot tell them apart,
   their behaviour over time can.
2. **A gauge that holds still.** The output is the frame in the units of a level
   ``L_t``: ``F_t = L_t^-1 o T_t``, the raw frame with its jitter removed. On a still
   camera ``L_t`` is the *gauge*: the plain mean of the first five frames' ``T``, then
   later frames at a third of a plain mean's weight (``1 / (3 n)``, never less than
   ``dt / 30 s``): it converges to the raw frames' long-run mean but moves three times
   less doing so. A filter of fixed weight (the alpha-beta filter below, weight 0.1)
   wanders by about a third of the jitter, which every output inherits: measured
   with ``scripts/temporal_family.py``, the spread of the output's fit to the truth
   shrank only 2-4x on still cameras; with the gauge, 5x and more from the 5th frame.
3. **A tracker for motion.** Beside the gauge a critically damped alpha-beta filter
   (level and trend, weight ``smoothing``) follows ``T_t``'s smooth part without lag
   under steady change. The jitter is measured from the data: what a straight line
   through the last two ``T`` does not predict (a second difference, which smooth
   change hardly feeds), as a relative change of depth at the frame's quartiles.
   When the tracker and the gauge part by more than 2.5 times what that jitter would
   explain, the output moves towards the tracker (fully at 4 times,
   :attr:`StabilizedFrame.moving`), and the gauge and the reference start again from
   it: time constants of motion are the tracker's; the gauge's memory grows again
   once the camera stops. Lowering the weights as the inlier share falls is not done
   (measured and rejected before: it let more jitter through), except in the band just
   above ``min_inliers``, halfway from it to 1, where the weight rises towards 1 (raw
   frames) so that a worsening fit fades into a reset instead of falling off a cliff.

4. **Reset** when the fit is hopeless: too few valid pixels, an inlier share below
   ``min_inliers``, an inlier residual above ``max_residual`` (a scene cut, a covered
   lens, a jump of the pose), a map that would change depth by more than 100 %, a gap
   of more than ``reset_after`` seconds between stamps, a stamp that goes backwards,
   or a new image size. The stream then starts again from that frame (its output is
   the raw frame) and :attr:`StabilizedFrame.reason` says why.

Limits (``scripts/temporal_family.py``): the frame-to-frame fit cannot tell a turning
camera's change of view from a change of scale, so under turning the output can be
less steady than the raw frames (as before this design); and where the jitter is
small against the pixel noise (2 % jitter, 5 % noise), the fits' own noise bounds the
gain below 5x.

Cost: the fit runs on a fixed grid of about ``samples`` pixels whatever the image size;
the only per-pixel work is the final ``a * x + b`` in float32 (two passes over the frame).

Order in the pipeline: the stabiliser runs on the network's output, *before* online
metric alignment (:mod:`dpt_ros.alignment`), so that alignment fits a steadier input.
Pure numpy: no ROS, no torch.
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from dpt_ros.alignment.fit import DEFAULT_THRESHOLD
from dpt_ros.options import Options, option

__all__ = [
    "DEFAULT_MAX_RESIDUAL",
    "DEFAULT_MIN_INLIERS",
    "DEFAULT_RESET_AFTER",
    "DEFAULT_SAMPLES",
    "DEFAULT_SMOOTHING",
    "FIRST_FRAME",
    "MODES",
    "StabilizedFrame",
    "TemporalOptions",
    "TemporalStabilizer",
    "TemporalStreams",
]

MODES = ("affine", "scale")
"""``affine``: inverse depth (relative models) mapped by ``a * x + b``; ``scale``: depth
(metric models, and relative models without a shift) mapped by ``a * x``."""

DEFAULT_SMOOTHING = 0.1
"""Weight of each new frame's level in the tracker (``1 - discount`` of the alpha-beta
filter that the output follows while the camera moves): about a 10-frame memory."""
DEFAULT_MIN_INLIERS = 0.3
"""Smallest share of the valid sampled pixels that must agree with a fit; below, reset."""
DEFAULT_MAX_RESIDUAL = 0.05
"""Largest median relative residual of the inliers; above, reset. Inliers spread evenly
over the ``threshold`` band (0.1) give 0.05, i.e. no consistent fit at all."""
DEFAULT_RESET_AFTER = 5.0
"""Seconds without a frame after which a stream starts again: above the frame period of
a CPU pipeline (about 1 s a frame), below a real pause of the camera or a bag."""
"""Seconds between two frames' stamps beyond which the stream starts again."""
DEFAULT_SAMPLES = 4096
"""Pixels fitted per frame (a fixed grid), whatever the image size."""

FIRST_FRAME = "first frame"
""":attr:`StabilizedFrame.reason` of a stream's first frame (and the first after
:meth:`TemporalStabilizer.reset`): a start, not an event."""

_MIN_VALID = 64  # fewest valid sampled pixels a fit is attempted with
_ROUNDS = 8  # inlier re-selection rounds at most
_GAUGE_FRAMES = 5  # frames whose plain mean sets the gauge
_STEADINESS = 3.0  # later frames weigh 1 / (_STEADINESS * n) in the gauge
_MEMORY = 30.0  # seconds: the gauge's longest memory
_JITTER_RATE = 0.02  # slowest update of the jitter estimate (about 50 frames)
_JITTER_MIN = 4
_MAX_CORRECTION = 1.0  # largest relative change of depth a map may make; above: reset  # second differences before motion is looked for
_STILL_BELOW = 2.5  # tracker-to-gauge distance (in jitter units) below which: still
_MOVING_ABOVE = 4.0  # above which: moving

Mode = Literal["affine", "scale"]


@dataclass(frozen=True)
class StabilizedFrame:
    """One stabilised frame and how it was made.

    Attributes:
        output: (H, W) float32, the stabilised frame in the input's units (inverse depth
            for ``affine``, depth for ``scale``), ``scale * input + shift``; NaN where
            the input was NaN.
        scale: ``a`` of the map applied to this frame (1 on a reset).
        shift: ``b`` of the map applied (0 on a reset and always in ``scale`` mode).
        inliers: Sampled pixels that agreed with the fit to the previous output (0 on
            a reset that was not caused by a fit).
        samples: Valid sampled pixels the fit used.
        inlier_fraction: ``inliers / samples`` (confidence-weighted), 0 when not fitted.
        residual: Median relative residual of the inliers (~ relative depth error);
            NaN when not fitted.
        gain: Weight of this frame's own map in the level its output was made with, in
            ``(0, 1]``: the gauge's (1/2 at the second frame, falling), the tracker's
            while moving, higher when few pixels agree (just above ``min_inliers``);
            1 on a reset.
        reset: The stream started again at this frame (also on the first frame).
        reason: Why it started again; empty when ``reset`` is False.
        resets: Resets of this stream so far, not counting its first frame.
        moving: How surely the camera (or the scene) moved at this frame, 0..1: 0 =
            the output is in the gauge's units, 1 = in the tracker's.
    """

    output: np.ndarray
    scale: float
    shift: float
    inliers: int
    samples: int
    inlier_fraction: float
    residual: float
    gain: float
    reset: bool
    reason: str
    resets: int
    moving: float = 0.0

    @property
    def restarted(self) -> bool:
        """The stream started again at this frame for a reason of its own (a fit that
        failed, a gap, a stamp going back, a new size): not its first frame."""
        return self.reset and self.reason != FIRST_FRAME


@dataclass(frozen=True)
class _Fit:
    """A robust fit ``S ~ scale * x + shift`` of the sampled pixels."""

    scale: float
    shift: float
    inliers: int
    samples: int
    inlier_fraction: float
    residual: float


def _finite(name: str, value: float, lo: float, hi: float, lo_open: bool = False) -> float:
    """``value`` as a float when finite and in range; ValueError naming ``name`` otherwise."""
    v = float(value)
    low_ok = v > lo if lo_open else v >= lo
    if not (math.isfinite(v) and low_ok and v <= hi):
        bracket = "(" if lo_open else "["
        raise ValueError(f"{name} must be a finite number in {bracket}{lo}, {hi}], got {value!r}")
    return v


def _grid(shape: tuple[int, int], samples: int) -> tuple[slice, slice]:
    """Row and column slices of a regular grid of about ``samples`` pixels over ``shape``.

    A strided grid rather than random pixels: a view of the frame (no index arrays), the
    same pixels in every frame (the fit compares like with like), spread evenly.
    """
    h, w = shape
    step = max(1, math.ceil(math.sqrt(h * w / samples)))
    return slice(step // 2, None, step), slice(step // 2, None, step)


def _quartiles(x: np.ndarray) -> np.ndarray:
    """The quartiles of a frame's positive finite samples (``[1.0]`` if none): where
    the changes of two maps of it are compared."""
    with np.errstate(invalid="ignore"):
        good = x[np.isfinite(x) & (x > 0.0)]
    return np.percentile(good, (25.0, 75.0)) if good.size else np.array([1.0])


def _starts(
    x: np.ndarray, target: np.ndarray, guess: tuple[float, float], affine: bool
) -> list[tuple[float, float]]:
    """Starting ``(scale, shift)`` hypotheses of :func:`_fit`, each cheap and each
    right in a different case.

    * The frames' quartiles (medians in scale mode) matched: global statistics, which
      motion hardly moves; wrong when many pixels changed.
    * ``guess``, the previous frame's output map (the new raw frame taken to equal the
      previous one): off by the jitter only, whatever moved.
    * The median of the per-pixel ratios ``target / x`` (and the median remaining
      shift): right while fewer than half the pixels changed.
    """
    starts = [guess]
    if affine:
        x25, x50, x75 = np.percentile(x, (25.0, 50.0, 75.0))
        t25, t50, t75 = np.percentile(target, (25.0, 50.0, 75.0))
        if x75 > x25:
            scale = float((t75 - t25) / (x75 - x25))
            starts.append((scale, float(t50 - scale * x50)))
    else:
        x50 = float(np.median(x))
        if x50 > 0.0:
            starts.append((float(np.median(target)) / x50, 0.0))
    positive = x > 0.0
    if np.any(positive):
        scale = float(np.median(target[positive] / x[positive]))
        shift = float(np.median(target - scale * x)) if affine else 0.0
        starts.append((scale, shift))
    return [(a, b) for a, b in starts if math.isfinite(a) and math.isfinite(b) and a > 0.0]


def _fit(
    x: np.ndarray,
    target: np.ndarray,
    weight: np.ndarray,
    affine: bool,
    threshold: float,
    guess: tuple[float, float] = (1.0, 0.0),
) -> _Fit | None:
    """Robust weighted least squares ``target ~ scale * x + shift`` on sampled pixels.

    Minimises ``sum(weight * ((scale * x + shift - target) / target) ** 2)`` over the
    inliers (relative residual below ``threshold``), re-selected until they stop
    changing, from the best (by the truncated loss, as MSAC scores) of a few informed
    starts (:func:`_starts`). ``dpt_ros.alignment``'s RANSAC is not used: its hundreds
    of random hypotheses cost several milliseconds, and here starts close to the answer
    are known, so a few rounds of re-selection converge.

    Args:
        x: (n,) float64 new frame's values, all finite.
        target: (n,) float64 previous output's values, all finite and > 0.
        weight: (n,) float64 confidence, all > 0.
        affine: Fit the shift too (else ``shift = 0``).
        threshold: Inlier bound on the relative residual.
        guess: A start: the previous frame's map onto its output.

    Returns:
        The fit, or None when the frame is degenerate (no spread to fit a scale to).
    """
    inv = 1.0 / target
    starts = _starts(x, target, guess, affine)
    if not starts:
        return None
    band = 3.0 * threshold  # the first selection is wide: the starts are only close

    def cost(start: tuple[float, float]) -> float:
        err = np.minimum(np.abs((start[0] * x + start[1]) * inv - 1.0), band)
        return float(weight @ (err * err))

    scale, shift = min(starts, key=cost)
    inliers = np.abs((scale * x + shift) * inv - 1.0) < band
    for _ in range(_ROUNDS):
        v = weight[inliers] * inv[inliers] ** 2  # relative residuals: weight 1 / target^2
        xi, ti = x[inliers], target[inliers]
        sv = float(v.sum())
        if int(inliers.sum()) < 3 or not sv > 0.0:
            return None
        if affine:
            mx, mt = float(v @ xi) / sv, float(v @ ti) / sv
            dx = xi - mx
            sxx = float(v @ (dx * dx))
            if not sxx > 1e-12 * float(v @ (xi * xi)):  # no spread (to rounding)
                return None
            scale = float(v @ (dx * (ti - mt))) / sxx
            shift = mt - scale * mx
        else:
            sxx = float(v @ (xi * xi))
            if not sxx > 0.0:
                return None
            scale, shift = float(v @ (xi * ti)) / sxx, 0.0
        err = np.abs((scale * x + shift) * inv - 1.0)
        new = err < threshold
        if np.array_equal(new, inliers):
            break
        inliers = new
    total = float(weight.sum())
    n_in = int(inliers.sum())
    return _Fit(
        scale=scale,
        shift=shift,
        inliers=n_in,
        samples=int(x.size),
        inlier_fraction=float(weight[inliers].sum()) / total if total > 0.0 else 0.0,
        residual=float(np.median(err[inliers])) if n_in else math.inf,
    )


class TemporalStabilizer:
    """Removes per-frame scale (and shift) jitter from one camera stream, online.

    One instance per stream (camera, bag): it keeps that stream's previous output and
    filter state. See the module docstring for the method.

    Example::

        stab = TemporalStabilizer("affine")
        for stamp, relative in frames:
            result = stab.update(relative, stamp=stamp)
            publish(result.output)
    """

    def __init__(
        self,
        mode: Mode = "affine",
        *,
        smoothing: float = DEFAULT_SMOOTHING,
        min_inliers: float = DEFAULT_MIN_INLIERS,
        max_residual: float = DEFAULT_MAX_RESIDUAL,
        reset_after: float = DEFAULT_RESET_AFTER,
        threshold: float = DEFAULT_THRESHOLD,
        samples: int = DEFAULT_SAMPLES,
    ) -> None:
        """Checks the settings.

        Args:
            mode: ``"affine"``: frames are inverse depth (relative models, larger =
                nearer), mapped by ``a * x + b``. ``"scale"``: frames are depth (metric
                models; or any output whose only freedom is a scale), mapped by ``a * x``.
            smoothing: Weight of each new frame's level in the tracker that the output
                follows while the camera moves, ``(0, 1]``; smaller = steadier and
                slower to follow; 1 = no stabilisation (raw frames out). On a still
                camera the gauge takes over, whatever this is.
            min_inliers: Smallest share of the valid sampled pixels (confidence-weighted)
                that must agree with the fit to the previous output, in ``[0, 1]``;
                below it the stream resets.
            max_residual: Largest median relative residual of those pixels, ``(0, 1]``;
                above it the stream resets.
            reset_after: Seconds between stamps beyond which the stream resets, ``> 0``.
            threshold: A pixel agrees with a fit when its relative residual is below
                this, ``(0, 1]`` (default: :data:`dpt_ros.alignment.DEFAULT_THRESHOLD`).
            samples: Pixels fitted per frame, on a regular grid; ``>= 256``.

        Raises:
            ValueError: An unknown mode, or a setting that is not a finite number in
                its range; the message names it.
        """
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}; got {mode!r}")
        self.mode: Mode = mode
        self.smoothing = _finite("smoothing", smoothing, 0.0, 1.0, lo_open=True)
        self.min_inliers = _finite("min_inliers", min_inliers, 0.0, 1.0)
        self.max_residual = _finite("max_residual", max_residual, 0.0, 1.0, lo_open=True)
        self.reset_after = _finite("reset_after", reset_after, 0.0, math.inf, lo_open=True)
        self.threshold = _finite("threshold", threshold, 0.0, 1.0, lo_open=True)
        if isinstance(samples, bool) or int(samples) != samples or samples < 256:
            raise ValueError(f"samples must be an integer >= 256, got {samples!r}")
        self.samples = int(samples)
        self._resets = 0
        self._started = False
        self._shape: tuple[int, int] | None = None
        self._stamp: float | None = None
        self._clear()

    @property
    def resets(self) -> int:
        """Resets of the stream so far (the first frame is not counted)."""
        return self._resets

    def reset(self) -> None:
        """Forgets the stream: the next frame starts it again (e.g. a new bag).

        Not counted in :attr:`resets` (nor is the first frame after it), because it is
        the caller's choice, not something the stream did.
        """
        self._started = False
        self._shape = None
        self._stamp = None
        self._clear()

    def _clear(self) -> None:
        """Filter state of a stream that starts at the next frame."""
        self._ref: np.ndarray | None = None  # the scene on the grid, first frame's units
        self._ref_n = 0  # frames averaged into it while still
        self._chain = (1.0, 0.0)  # T_t: raw frame t -> units of the stream's first frame
        self._out_level = (1.0, 0.0)  # L_{t-1}: the level the last output was made with
        self._out_map = (1.0, 0.0)  # F_{t-1} = L_{t-1}^-1 o T_{t-1}
        self._level = np.array([1.0, 0.0])  # tracker: L_t, the filtered T
        self._trend = np.zeros(2)  # its change per frame
        self._gauge = np.array([1.0, 0.0])  # still estimate: the mean of T since steady
        self._steady = 1  # frames in the still estimate
        self._chains: list[np.ndarray] = [np.array([1.0, 0.0])]  # the last two T
        self._dt: float | None = None  # seconds from the frame before to the last one
        self._jitter = 0.0  # running mean square of T's jitter, relative
        self._quartiles = np.array([1.0])  # of the reference (affine), where maps compare
        self._jitter_n = 0  # second differences behind it

    def update(
        self,
        frame: npt.ArrayLike,
        confidence: npt.ArrayLike | None = None,
        stamp: float | None = None,
    ) -> StabilizedFrame:
        """Stabilises the next frame of the stream.

        Args:
            frame: (H, W) float array: inverse depth (``affine``) or depth in metres
                (``scale``); NaN or inf = unknown. Non-positive values are never fitted
                (inverse depth <= 0 is at or beyond infinity, e.g. sky) but are mapped.
            confidence: Optional (H, W) float, the model's confidence per pixel, >= 0
                (NaN = 0): weights of the fit. None = all 1.
            stamp: The frame's time in seconds (e.g. its header stamp); None = not
                checked for gaps.

        Returns:
            The stabilised frame and the fit behind it.

        Raises:
            ValueError: ``frame`` not a 2-D float array; ``confidence`` of another shape,
                not float, or negative on a sampled pixel; ``stamp`` not finite.
        """
        arr = np.asarray(frame)
        if arr.ndim != 2:
            raise ValueError(f"frame must be a 2-D (H, W) array, got shape {arr.shape}")
        if not np.issubdtype(arr.dtype, np.floating):
            raise ValueError(f"frame must be a floating-point array, got dtype {arr.dtype}")
        conf = None if confidence is None else np.asarray(confidence)
        if conf is not None and (
            conf.shape != arr.shape or not np.issubdtype(conf.dtype, np.floating)
        ):
            raise ValueError(
                f"confidence must be a float array of the frame's shape {arr.shape}, got "
                f"shape {conf.shape} and dtype {conf.dtype}"
            )
        shape = (arr.shape[0], arr.shape[1])
        rows, cols = _grid(shape, self.samples)
        x = arr[rows, cols].astype(np.float64).ravel()
        c = None if conf is None else conf[rows, cols].astype(np.float64).ravel()
        if c is not None:
            if np.any(c < 0.0):
                raise ValueError(f"confidence must be >= 0, got {float(np.nanmin(c))}")
            c = np.nan_to_num(c, nan=0.0, posinf=0.0)
        before = self._stamp
        reason = self._restart_reason(shape, stamp)
        dt = None if stamp is None or before is None else float(stamp) - before
        fit = None
        if not reason:
            fit, reason = self._fit_previous(x, c)
        if reason:
            return self._start(arr, x, reason, fit)
        assert fit is not None  # no reason to restart = a fit was made
        return self._follow(arr, x, fit, dt)

    def _restart_reason(self, shape: tuple[int, int], stamp: float | None) -> str:
        """Why the stream must start again before fitting this frame; empty if not."""
        reason = ""
        if stamp is not None:
            t = float(stamp)
            if not math.isfinite(t):
                raise ValueError(f"stamp must be finite seconds, got {stamp!r}")
            if self._stamp is not None and t < self._stamp:
                reason = f"stamp went back by {self._stamp - t:.3f} s"
            elif self._stamp is not None and t - self._stamp > self.reset_after:
                reason = (
                    f"no frame for {t - self._stamp:.3f} s (reset_after {self.reset_after:g} s)"
                )
            self._stamp = t
        if not self._started:
            reason = FIRST_FRAME
        elif shape != self._shape:
            assert self._shape is not None
            reason = (
                f"image size changed from {self._shape[1]}x{self._shape[0]} to "
                f"{shape[1]}x{shape[0]} (WxH)"
            )
        self._shape = shape
        return reason

    def _fit_previous(self, x: np.ndarray, c: np.ndarray | None) -> tuple[_Fit | None, str]:
        """Fits the sampled frame to the previous output; a reset reason if it fails."""
        prev = self._ref
        assert prev is not None
        with np.errstate(invalid="ignore"):
            ok = np.isfinite(x) & np.isfinite(prev) & (prev > 0.0)
            if self.mode == "scale":
                ok &= x > 0.0
            if c is not None:
                ok &= c > 0.0
        n = int(ok.sum())
        if n < _MIN_VALID:
            return None, f"only {n} of {x.size} sampled pixels valid (need {_MIN_VALID})"
        weight = np.ones(n) if c is None else c[ok]
        affine = self.mode == "affine"
        fit = _fit(x[ok], prev[ok], weight, affine, self.threshold, self._out_map)
        if fit is None:
            return None, "no fit: the frame has no depth variation"
        if not fit.scale > 0.0:
            return fit, f"fitted scale {fit.scale:.4g} is not positive"
        if fit.inlier_fraction < self.min_inliers:
            return fit, (
                f"inlier share {fit.inlier_fraction:.2f} below min_inliers {self.min_inliers:g}"
            )
        if not fit.residual <= self.max_residual:
            return fit, f"residual {fit.residual:.3f} above max_residual {self.max_residual:g}"
        return fit, ""

    def _start(
        self, arr: np.ndarray, x: np.ndarray, reason: str, fit: _Fit | None
    ) -> StabilizedFrame:
        """Starts the stream at this frame: the output is the raw frame."""
        if self._started:
            self._resets += 1
        self._started = True
        self._clear()
        self._ref = x.copy()
        self._ref_n = 1
        self._quartiles = _quartiles(x)
        return StabilizedFrame(
            output=arr.astype(np.float32, copy=True),
            scale=1.0,
            shift=0.0,
            inliers=0 if fit is None else fit.inliers,
            samples=0 if fit is None else fit.samples,
            inlier_fraction=0.0 if fit is None else fit.inlier_fraction,
            residual=math.nan if fit is None else fit.residual,
            gain=1.0,
            moving=0.0,
            reset=True,
            reason=reason,
            resets=self._resets,
        )

    def _fade(self, share: float) -> float:
        """How far a fit with this inlier share pulls the level towards its own frame.

        0 down to a share halfway between ``min_inliers`` and 1, then rising linearly
        to 1 (raw frames) at ``min_inliers``, where the stream resets.
        """
        top = 0.5 * (1.0 + self.min_inliers)
        fade = (top - share) / max(top - self.min_inliers, 1e-9)
        return min(max(fade, 0.0), 1.0)

    def _still_gain(self, dt: float | None) -> float:
        """Weight of the next frame in the still estimate (the gauge).

        The plain mean of the first :data:`_GAUGE_FRAMES` frames, then a third of a
        plain mean's weight (``1 / (3 n)``): the gauge moves three times less while it
        converges to the long-run mean; never less than ``dt / _MEMORY`` so that
        nothing older than about :data:`_MEMORY` seconds is held.
        """
        n = self._steady
        gain = 1.0 / (n + 1) if n < _GAUGE_FRAMES else 1.0 / (_STEADINESS * (n + 1))
        if dt is not None and dt > 0.0:
            gain = max(gain, min(dt / _MEMORY, 1.0))
        return gain

    def _relative(self, change: np.ndarray, level: np.ndarray) -> float:
        """The largest relative change of the output, ``|change(q)| / level(q)``, that
        a change of the map's ``(a, b)`` makes at the reference's quartiles ``q``
        (where a change of ``b`` matters as much as one of ``a``)."""
        q = self._quartiles
        return float(np.max(np.abs(change[0] * q + change[1]) / np.abs(level[0] * q + level[1])))

    def _moving(self, chain: np.ndarray, dt: float | None) -> float:
        """Updates the jitter estimate with ``chain`` and says how surely the camera
        (or the scene) moves: 0 = still, 1 = moving, linear in between.

        The jitter is what a straight line through the last two chained maps does not
        predict (a second difference: real change is smooth, the network's jitter is
        white), as a relative change of the output; the test compares the tracker's
        level with the gauge in units of how far apart jitter alone would put them.
        """
        if len(self._chains) == 2:
            rho = 1.0 if dt is None or not self._dt else dt / self._dt
            rho = min(max(rho, 0.2), 5.0)
            second = chain - self._chains[1] - rho * (self._chains[1] - self._chains[0])
            var = self._relative(second, chain) ** 2 / (1.0 + (1.0 + rho) ** 2 + rho * rho)
            self._jitter_n += 1
            rate = max(1.0 / self._jitter_n, _JITTER_RATE)
            self._jitter += rate * (var - self._jitter)
            self._chains.pop(0)
        self._chains.append(chain)
        self._dt = dt
        if self._jitter_n < _JITTER_MIN:
            return 0.0
        theta = 1.0 - self.smoothing
        tracker = (1.0 - theta) * (1.0 + 4.0 * theta + 5.0 * theta * theta) / (1.0 + theta) ** 3
        # A mean of few squares is often far below the truth: widen it while young.
        jitter = self._jitter * (1.0 + _JITTER_MIN / self._jitter_n)
        spread = math.sqrt(jitter * (tracker + 1.0 / self._steady)) + 1e-12
        distance = self._relative(self._level - self._gauge, self._gauge) / spread
        return min(max((distance - _STILL_BELOW) / (_MOVING_ABOVE - _STILL_BELOW), 0.0), 1.0)

    def _update_reference(
        self, x: np.ndarray, out_map: tuple[float, float], level: tuple[float, float], moving: float
    ) -> None:
        """Brings the reference into this output's units and averages the frame into it.

        While still, each pixel is the mean of the frames since the reference started
        (pixel noise averages out, and every frame is fitted to the same scene, so fit
        errors do not add up frame after frame); while moving, the frame replaces it,
        as do pixels that disagree with it (an object that moved) or had no value.
        """
        ref = self._ref
        assert ref is not None
        (pa, pb), (la, lb) = self._out_level, level
        if (pa, pb) != (la, lb):  # L_t^-1 o L_{t-1}
            ref *= pa / la
            ref += (pb - lb) / la
        self._out_level, self._out_map = level, out_map
        mapped = out_map[0] * x + out_map[1]
        if moving >= 1.0:
            self._ref_n = 0
        self._ref_n += 1
        gain = max(1.0 / self._ref_n, moving)
        with np.errstate(invalid="ignore", divide="ignore"):
            known = np.isfinite(ref) & (ref > 0.0)
            agree = known & (np.abs(mapped / ref - 1.0) < self.threshold)
            g = np.where(agree, gain, 1.0)
            new = np.isfinite(mapped)
        ref[new] += g[new] * (mapped[new] - ref[new])

    def _follow(
        self, arr: np.ndarray, x: np.ndarray, fit: _Fit, dt: float | None
    ) -> StabilizedFrame:
        """Chains the fit, filters the chain and maps the frame."""
        # The fit is to the reference in the last output's units: T_t = L_{t-1} o P_t.
        la0, lb0 = self._out_level
        self._chain = (la0 * fit.scale, la0 * fit.shift + lb0)
        measured = np.array(self._chain)
        if self.mode == "affine":
            self._quartiles = _quartiles(x)
        fade = self._fade(fit.inlier_fraction)
        # The tracker: a critically damped alpha-beta filter of (a, b), discount 1 - gain.
        gain = self.smoothing + (1.0 - self.smoothing) * fade
        discount = 1.0 - gain
        alpha, beta = 1.0 - discount * discount, gain * gain
        innovation = measured - (self._level + self._trend)
        self._level = self._level + self._trend + alpha * innovation
        self._trend = self._trend + beta * innovation
        # The gauge: a slowly growing mean of T while nothing moves.
        still = self._still_gain(dt)
        still += (1.0 - still) * fade
        self._gauge = self._gauge + still * (measured - self._gauge)
        self._steady += 1
        moving = 1.0 if self.smoothing >= 1.0 else self._moving(measured, dt)
        if moving >= 1.0:  # the gauge starts again from the tracker
            self._gauge = self._level.copy()
            self._steady = _GAUGE_FRAMES
        level = self._gauge + moving * (self._level - self._gauge)
        weight = still + moving * (alpha - still)
        la, lb = float(level[0]), float(level[1])
        if not (math.isfinite(la) and math.isfinite(lb) and la > 0.0):
            return self._start(arr, x, f"filtered scale {la:.4g} is not positive", fit)
        if self.mode == "scale":
            lb = 0.0
        # F_t = L_t^-1 o T_t.
        a = self._chain[0] / la
        b = (self._chain[1] - lb) / la if self.mode == "affine" else 0.0
        correction = self._relative(np.array([a - 1.0, b]), np.array([1.0, 0.0]))
        if not correction <= _MAX_CORRECTION:
            return self._start(
                arr,
                x,
                f"the map would change depth by {100 * correction:.0f} % "
                f"(more than {100 * _MAX_CORRECTION:.0f} %)",
                fit,
            )
        self._update_reference(x, (a, b), (la, lb), moving)
        out = np.multiply(arr, np.float32(a), dtype=np.float32)
        if b != 0.0:
            out += np.float32(b)
        return StabilizedFrame(
            output=out,
            scale=a,
            shift=b,
            inliers=fit.inliers,
            samples=fit.samples,
            inlier_fraction=fit.inlier_fraction,
            residual=fit.residual,
            gain=weight,
            moving=moving,
            reset=False,
            reason="",
            resets=self._resets,
        )


@dataclass(frozen=True)
class TemporalOptions(Options):
    """Whether and how depth is stabilised over time (the node's ``temporal.*``
    parameters, the bag tool's ``--temporal*`` flags): one source of their defaults and
    ranges.

    Attributes:
        enabled: stabilise each camera stream (off by default: it changes what relative
            depth means, see :class:`TemporalStabilizer`).
        smoothing: weight of each new frame's level in the tracker (the output
            follows it while the camera moves), ``(0, 1]``; 1 = raw frames.
        min_inliers: smallest share of the sampled pixels that must agree with a fit.
        max_residual: largest median relative residual of those pixels.
        reset_after: seconds between two frames' stamps beyond which a stream restarts.
    """

    enabled: bool = option(
        False,
        "Stabilise each camera's depth over time, right after inference and before "
        "relative_depth.alignment: relative models by an affine map of inverse depth, "
        "metric models by a scale, fitted to the previous output and filtered. Off by "
        "default: depth/relative then means the units of a filtered level of recent "
        "frames, not of each frame alone. Changing any temporal.* parameter starts the "
        "streams afresh.",
        param="temporal.enabled",
        flag="--temporal",
        summary=(
            "Stabilise each camera's depth over time (relative: affine map of inverse depth; "
            "metric: a scale); off by default."
        ),
    )
    smoothing: float = option(
        DEFAULT_SMOOTHING,
        "Weight of each new frame's level in the tracker of the fitted maps that the "
        "output follows while the camera moves (on a still camera a slowly growing mean "
        "of the frames takes over); smaller = steadier, 1 = raw frames.",
        range=(0.01, 1.0),
        param="temporal.smoothing",
        flag="--temporal-smoothing",
        summary=(
            "Weight of each new frame in the tracker the output follows while the camera moves; "
            "smaller = steadier, 1 = raw frames."
        ),
    )
    min_inliers: float = option(
        DEFAULT_MIN_INLIERS,
        "Smallest share of the sampled pixels that must agree with a frame's fit to the "
        "stream's reference (the mean of recent outputs); below it the stream starts "
        "again from that frame.",
        range=(0.0, 1.0),
        param="temporal.min_inliers",
        flag="--temporal-min-inliers",
        summary=(
            "Smallest share of sampled pixels agreeing with a frame's fit; below it the stream "
            "starts again."
        ),
    )
    max_residual: float = option(
        DEFAULT_MAX_RESIDUAL,
        "Largest median relative residual of those pixels (0.05 = 5 % of depth); above "
        "it the stream starts again.",
        range=(0.001, 1.0),
        param="temporal.max_residual",
        flag="--temporal-max-residual",
    )
    reset_after: float = option(
        DEFAULT_RESET_AFTER,
        "Seconds between two frames' stamps beyond which the stream starts again; keep "
        "it above the camera's frame period.",
        range=(0.01, 3600.0),
        unit="s",
        param="temporal.reset_after",
        flag="--temporal-reset-after",
    )

    def stabilizer(self, mode: Mode) -> TemporalStabilizer:
        """A stabiliser of one stream with these settings."""
        return TemporalStabilizer(
            mode,
            smoothing=self.smoothing,
            min_inliers=self.min_inliers,
            max_residual=self.max_residual,
            reset_after=self.reset_after,
        )


class TemporalStreams:
    """One :class:`TemporalStabilizer` per stream (camera), created on its first frame.

    What the frame pipeline calls (``FramePipeline.temporal``) after inference, per
    frame; :meth:`reset` forgets every stream (a new bag).

    Args:
        options: the settings of every stream (``enabled`` is the caller's business).
    """

    def __init__(self, options: TemporalOptions) -> None:
        self.options = options
        self._streams: dict[Hashable, TemporalStabilizer] = {}

    def update(
        self, stream: Hashable, frame: np.ndarray, mode: Mode, stamp: float | None
    ) -> StabilizedFrame:
        """Stabilises the next frame of ``stream`` (see :meth:`TemporalStabilizer.update`);
        a stream whose mode changes (another model) starts again."""
        stab = self._streams.get(stream)
        if stab is None or stab.mode != mode:
            stab = self._streams[stream] = self.options.stabilizer(mode)
        return stab.update(frame, stamp=stamp)

    def reset(self) -> None:
        """Forgets every stream: the next frame of each starts it afresh."""
        self._streams.clear()
