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

1. **Fit to the reference.** A robust weighted fit ``T_t`` of ``x_t`` to a reference
   ``R`` of the scene on the same pixels, in the units of the stream's first frame,
   from the previous frame's map (or, when fewer than 80 % of the pixels agree with
   it, the best of a few informed starts: the two frames' quartiles matched, the
   median per-pixel ratio), iteratively re-selecting the inliers: pixels whose
   residual relative to ``R`` is below ``threshold`` (the convention of
   :func:`dpt_ros.alignment.fit_to_reference`: about the relative depth error),
   weighted by the model's confidence where it has one. Pixels that moved (an object
   crossing, the borders of objects while the camera moves) disagree and drop out.
   The frame is fitted as a map of the reference (``x ~ alpha * R + beta``, then
   inverted), a Deming regression that knows how many frames ``R`` averages: the
   reverse (``R`` on a noisy frame) flattens the map by ``1 / (1 + noise^2 /
   spread^2)`` (regression dilution), a bias that an averaged reference passes on
   from frame to frame, so that it drifts. While nothing moves, ``R`` is the
   per-pixel mean of the mapped frames since it started (pixel noise averages out,
   and every frame is fitted to the same scene, so fit errors do not add up from
   frame to frame); every pixel while the camera moves, and pixels that disagree with
   it twice running (an object that moved: once is as likely the tail of the pixel
   noise, and taking those values would pull ``R`` to the side the threshold
   favours: measured, a drift of 0.1 % a frame at 5 % pixel noise), take the new
   frame's value. ``T_t`` holds the network's per-frame jitter (white: independent
   between frames) and the change of the view as the camera moves; a fit cannot tell
   them apart, their behaviour over time can.
2. **A gauge that holds still.** The output is the frame in the units of a level
   ``L_t``: ``F_t = L_t^-1 o T_t``, the raw frame with its jitter removed. On a still
   camera ``L_t`` is the *gauge*: the plain mean of the first five frames' ``T``, then
   later frames at a third of a plain mean's weight (``1 / (3 n)``, never less than
   ``dt / 30 s``): it converges to the raw frames' long-run mean but moves three times
   less doing so. A filter of fixed weight wanders by about a third of the jitter,
   which every output inherits (2-4x steadier than raw, against 5x and more).
3. **A tracker for motion.** Beside the gauge a critically damped alpha-beta filter
   (level and trend) follows ``T_t`` without lag under steady change. The jitter is
   measured from the data: what a straight line through the last two ``T`` does not
   predict (a second difference, which steady change hardly feeds). Changes of maps
   are compared as relative changes of depth at the frame's 10th and 90th
   percentiles, over the range where it has values (at its quartiles a change of
   scale traded for one of shift went unseen, and flattened frames after a turn).
   The output moves towards the tracker (:attr:`StabilizedFrame.moving`) on either
   of two signs:

   * the tracker and the gauge part by more than 2.5 times what the jitter would
     explain (fully at 4 times): a steady change (driving towards a wall). The jitter
     is taken at its one-sided 95 % upper confidence bound (a mean of ``n`` squared
     second differences has about ``n / 2`` degrees of freedom): taken at face value,
     a few early frames' estimate was often half the truth, and a run of three or
     four same-sign draws on a still camera passed for motion and restarted the gauge
     off the long-run level (about -7 % for the rest of a sequence);
   * the fits *walk*: fitted to the frame before the last one instead of to ``R``,
     the frame's map differs by more than pixel noise explains (measured, not
     modelled: the same fit on two interleaved halves of the pixels, which see the
     same content, differs by noise alone). On a still camera both fits find the
     same map; when the view changes (turning), each fit is biased by what came into
     view, the biases of fits chained from frame to frame add up, and no filter of
     the maps alone can tell that walk from jitter in time. Its mean square per frame
     over the jitter's, ``q``, moves the output to the tracker from 0.1 (fully at
     0.5), and sets the tracker's weight: at least ``smoothing``, the steady-state
     Kalman gain ``(sqrt(q^2 + 4 q) - q) / 2`` of a random walk seen through white
     noise (raw frames as the walk dominates), and 0.3 while moving.

   Once moving, the gauge and the reference start again from the tracker; the gauge's
   memory grows again once the camera stops. Whatever the sign says, the gauge's
   weight is never below the steady-state Kalman gain of the measured walk (beyond
   :data:`_WALK_FLOOR` of the jitter, which a curve the mode cannot model, such as
   ``affine-depth`` under ``scale``, shows on a still camera) seen through the jitter:
   a walk too slow to count as motion (a slow turn under 2 % jitter) still adds up
   over a long memory, and the output lagged it until it was less steady than the
   raw frames. Each frame moves the tracker and the
   gauge by at most 3 jitter standard deviations (and 2 % of depth): one outlying
   frame of a heavy-tailed network must not pass for motion; this holds only while
   the fit is good. Lowering the weights as the inlier share falls is not done (it
   let more jitter through), except in the band just above ``min_inliers``, halfway
   from it to 1, where the weight rises towards 1 (raw frames) so that a worsening
   fit fades into a reset instead of falling off a cliff.
4. **Reset** when the fit is hopeless: too few valid pixels, an inlier share below
   ``min_inliers``, an inlier residual above ``max_residual`` (a scene cut, a covered
   lens, a jump of the pose), a frame that falls where the reference rises, a map
   that would change depth by more than 100 % or scale its contrast by more than 2
   (or less than 1/2), a gap of more than ``reset_after`` seconds between stamps, a
   stamp that goes backwards, or a new image size. The stream then starts again from
   that frame (its output is the raw frame) and :attr:`StabilizedFrame.reason` says
   why. One exception: on a still camera (no walk, not moving, the jitter measured),
   a map that changes depth by 100-200 % (or its contrast by a factor 2-3) under a
   clean fit (80 % of the pixels agree, residual below half ``max_residual``) is a
   heavy-tailed network's large jitter, not a cut: it is mapped like any other frame,
   once (twice running, the stream restarts). Restarting from it kept its jitter in every later output.

Measured with ``scripts/temporal_family.py`` (families of 260 sequences; seeds 0
and 1 used in development, 2-4 held out): see docs/temporal.md. Limits: a camera that
moves still comes out less steady than the raw frames in about one moving sequence in
ten to twenty, mostly turning at low rates or under
little jitter (2-5 %): what comes into view biases every fit alike for frames on end
(a walk that the two fits of the walk's sign agree on), and the first fits after a
reset have nothing to be compared with; a change of the network's curve that no map
of the mode models (``affine-depth`` under ``mode="scale"``) is not removed.

Cost: the fit runs on a fixed grid of about ``samples`` pixels whatever the image size
(three fits: the reference, and the two halves of the walk's); the only per-pixel work
is the final ``a * x + b`` in float32 (two passes over the frame).

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
"""Least weight of each new frame's level in the tracker (``1 - discount`` of the
alpha-beta filter that the output follows while the camera moves): about a 10-frame
memory; more while the fits walk."""
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
_GOOD_GUESS = 0.8  # share of pixels agreeing with the guess above which no other start
_GAUGE_FRAMES = 5  # frames whose plain mean sets the gauge
_STEADINESS = 3.0  # later frames weigh 1 / (_STEADINESS * n) in the gauge
_MEMORY = 30.0  # seconds: the gauge's (and the reference's) longest memory
_JITTER_RATE = 0.02  # slowest update of the jitter estimate (about 50 frames)
_JITTER_MIN = 4  # second differences before motion is looked for
_MAX_CORRECTION = 1.0  # largest relative change of depth a map may make; above: reset
_STILL_BELOW = 2.5  # tracker-to-gauge distance (in jitter units) below which: still
_MOVING_ABOVE = 4.0  # above which: moving
_WALK_RATE = 0.2  # slowest update of the walk estimate (about 5 frames)
_NOISE_MARGIN = 2.0  # closure errors within this many noise variances are noise
_WALK_STILL = 0.1  # walk over jitter (mean squares per frame) below which: still
_WALK_MOVING = 0.5  # above which: moving
_WALK_FLOOR = 0.03  # walk over jitter that bounds no gauge: a curve no map models
_WALK_HOLD = 5  # frames the walk's sign of motion takes to fall from 1 to 0
_DRIFT = 4.0  # the walk counts this many times over in the tracker's gain
_CLIP = 3.0  # largest step of the filters, in jitter standard deviations
_CLIP_LEAST = 0.02  # ... but never below this relative change of depth
_FALSE_ALARM_Z = 1.645  # one-sided normal quantile of the jitter's upper bound (95 %)

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


def _percentiles(x: np.ndarray) -> np.ndarray:
    """The 10th and 90th percentiles of a frame's positive finite samples (``[1.0]`` if
    none): where the changes of two maps of it are compared."""
    with np.errstate(invalid="ignore"):
        good = x[np.isfinite(x) & (x > 0.0)]
    if not good.size:
        return np.array([1.0])
    k = (good.size - 1) * 0.1, (good.size - 1) * 0.9
    part = np.partition(good, (int(k[0]), int(k[1])))
    return part[[int(k[0]), int(k[1])]]


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


def _slope(sxx: float, stt: float, sxt: float, ratio: float) -> float:
    """Slope ``alpha`` of ``x ~ alpha * t`` from (weighted) second moments when both ``x``
    and ``t`` are noisy, the noise variance of ``x`` being ``ratio`` times that of ``t``
    (Deming regression); ``ratio = inf``: ``t`` has no noise (least squares of ``x`` on
    ``t``). Where ``x`` falls as ``t`` rises (``sxt <= 0``), the least-squares slope
    (<= 0: no map of depth), NaN when undefined."""
    if not sxt > 0.0:
        return sxt / stt if stt > 0.0 else math.nan
    if math.isinf(ratio):
        return sxt / stt
    d = ratio * stt - sxx
    return 2.0 * ratio * sxt / (d + math.sqrt(d * d + 4.0 * ratio * sxt * sxt))


def _inverted(alpha: float, samples: int) -> _Fit:
    """The fit of a frame that falls where the target rises (slope ``alpha <= 0``, or
    undefined): not a map of depth at all (another scene, a frame turned round)."""
    scale = 1.0 / alpha if alpha < 0.0 else -math.inf
    return _Fit(scale, 0.0, 0, samples, 0.0, math.inf)


def _kalman_gain(q: float) -> float:
    """Steady-state Kalman gain of a random walk whose step variance is ``q`` times
    the white noise it is seen through: ``(sqrt(q^2 + 4 q) - q) / 2``."""
    return 0.5 * (math.sqrt(q * q + 4.0 * q) - q)


def _start_map(
    x: np.ndarray,
    target: np.ndarray,
    inv: np.ndarray,
    weight: np.ndarray,
    affine: bool,
    threshold: float,
    guess: tuple[float, float],
    search: bool,
) -> tuple[float, float, np.ndarray] | None:
    """The map that :func:`_fit` starts from, ``(scale, shift, relative residuals)``:
    ``guess``, unless ``search`` and fewer than :data:`_GOOD_GUESS` of the pixels
    (weighted) agree with it (a cut, a jump); then the best of :func:`_starts` by the
    truncated loss (as MSAC scores). ``inv`` is ``1 / target``. None when no start is
    possible."""
    err = np.abs((guess[0] * x + guess[1]) * inv - 1.0)
    if not search or float(weight @ (err < threshold)) >= _GOOD_GUESS * float(weight.sum()):
        return guess[0], guess[1], err
    starts = _starts(x, target, guess, affine)
    if not starts:
        return None
    band = 3.0 * threshold

    def cost(start: tuple[float, float]) -> float:
        e = np.minimum(np.abs((start[0] * x + start[1]) * inv - 1.0), band)
        return float(weight @ (e * e))

    scale, shift = min(starts, key=cost)
    return scale, shift, np.abs((scale * x + shift) * inv - 1.0)


def _map_of_target(
    x: np.ndarray, target: np.ndarray, v: np.ndarray, affine: bool, var_ratio: float
) -> tuple[float, float, float] | None:
    """One weighted fit of the frame as a map of the target, ``x ~ alpha * target +
    beta`` (``beta = 0`` unless ``affine``), a Deming regression (:func:`_slope`).

    Args:
        x: (n,) float64 the frame's values on the inliers.
        target: (n,) float64 the target's values there, > 0.
        v: (n,) float64 weights, > 0.
        affine: Fit ``beta`` too.
        var_ratio: Noise variance of ``x`` over the target's (inf: a noiseless target).

    Returns:
        ``(alpha, mx, mt)``: the slope and the weighted means of ``x`` and ``target``
        that the line goes through (0, 0 when not ``affine``); None when the target
        has no spread (to rounding).
    """
    if not affine:
        vx = v * x
        stt = float(v @ (target * target))
        return _slope(float(vx @ x), stt, float(vx @ target), var_ratio), 0.0, 0.0
    sv = float(v.sum())
    mx, mt = float(v @ x) / sv, float(v @ target) / sv
    dx, dt = x - mx, target - mt
    vdt = v * dt
    stt = float(vdt @ dt)
    if not stt > 1e-12 * float(v @ (target * target)):
        return None
    return _slope(float(v @ (dx * dx)), stt, float(vdt @ dx), var_ratio), mx, mt


def _fit(
    x: np.ndarray,
    target: np.ndarray,
    weight: np.ndarray,
    affine: bool,
    threshold: float,
    guess: tuple[float, float] = (1.0, 0.0),
    ratio: float = math.inf,
    search: bool = True,
    summary: bool = True,
) -> _Fit | None:
    """Robust weighted fit ``target ~ scale * x + shift`` on sampled pixels.

    The frame is fitted as a map of the target (:func:`_map_of_target`, then inverted):
    least squares of an averaged target on a noisy frame is flattened by regression
    dilution, a bias that an accumulated reference passes on; ``ratio`` makes it a
    Deming regression. Relative residuals (~ relative depth error) over the inliers
    (``|scale * x + shift - target| / target < threshold``), re-selected until they stop
    changing, from :func:`_start_map` (not RANSAC: close starts are known here).

    Args:
        x, target, weight: (n,) float64: the frame's values (finite), the reference's
            (finite, > 0), the confidence (> 0).
        affine: Fit the shift too (else ``shift = 0``).
        threshold: Inlier bound on the relative residual.
        guess: A start: the previous frame's map onto the reference.
        ratio: Noise variance of the frame over the target's, > 0 (inf: noiseless target);
            in the frame's units ``scale^-2`` times that.
        search: Try :func:`_starts` when fewer than :data:`_GOOD_GUESS` agree with ``guess``.
        summary: Compute the median residual (else NaN).

    Returns None when the frame is degenerate (no spread to fit a scale to).
    """
    inv = 1.0 / target
    start = _start_map(x, target, inv, weight, affine, threshold, guess, search)
    if start is None:
        return None
    scale, shift, err = start
    inliers = err < 3.0 * threshold  # the first selection is wide: the start is only close
    for _ in range(_ROUNDS):
        v = weight[inliers] * inv[inliers] ** 2  # relative residuals: weight 1 / target^2
        if int(inliers.sum()) < 3 or not float(v.sum()) > 0.0:
            return None
        found = _map_of_target(x[inliers], target[inliers], v, affine, ratio / (scale * scale))
        if found is None:
            return None
        alpha, mx, mt = found
        if not alpha > 0.0:
            return _inverted(alpha, x.size)
        scale = 1.0 / alpha
        shift = mt - scale * mx if affine else 0.0
        err = np.abs((scale * x + shift) * inv - 1.0)
        new = err < threshold
        if np.array_equal(new, inliers):
            break
        inliers = new
    n_in, share = int(inliers.sum()), float(weight[inliers].sum()) / float(weight.sum())
    residual = (float(np.median(err[inliers])) if n_in else math.inf) if summary else math.nan
    return _Fit(scale, shift, n_in, int(x.size), share, residual)


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
            smoothing: Least weight of each new frame's level in the tracker that the
                output follows while the camera moves, ``(0, 1]`` (more while the fits
                walk); smaller = steadier and slower to follow; 1 = no stabilisation
                (raw frames out). On a still camera the gauge takes over, whatever this
                is.
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
        self._ref: np.ndarray | None = None  # the scene on the grid, in stream units
        self._ref_var = 1.0  # its pixel-noise variance over one frame's
        self._disagreed = np.zeros(0, bool)  # pixels that disagreed with it last frame
        self._mapped: list[np.ndarray] = []  # the last two frames on the grid, stream units
        self._chain = np.array([1.0, 0.0])  # T_t: raw frame t -> stream units
        self._chains: list[np.ndarray] = []  # the last two T
        self._level = np.array([1.0, 0.0])  # tracker: L_t, the filtered T
        self._trend = np.zeros(2)  # its change per frame
        self._gauge = np.array([1.0, 0.0])  # still estimate: the mean of T since steady
        self._steady = 1  # frames in the still estimate
        self._dt: float | None = None  # seconds from the frame before to the last one
        self._jitter = 0.0  # running mean square of T's jitter, relative
        self._jitter_n = 0  # second differences behind it
        self._walk = 0.0  # running mean square of the fits' walk (closure error - noise)
        self._walk_n = 0  # closures behind it
        self._points = np.array([1.0])  # the frame's 10th and 90th percentiles
        self._tracker_gain = self.smoothing  # the tracker's last gain
        self._walking = 0.0  # the walk's sign of motion, held (see _moving)
        self._excused = False  # the last frame's large correction was let through

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
        return self._follow(arr, x, c, fit, dt)

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

    def _valid(self, x: np.ndarray, target: np.ndarray, c: np.ndarray | None) -> np.ndarray:
        """The sampled pixels a fit of ``x`` to ``target`` may use."""
        with np.errstate(invalid="ignore"):
            ok = np.isfinite(x) & np.isfinite(target) & (target > 0.0)
            if self.mode == "scale":
                ok &= x > 0.0
            if c is not None:
                ok &= c > 0.0
        return ok

    def _fit_previous(self, x: np.ndarray, c: np.ndarray | None) -> tuple[_Fit | None, str]:
        """Fits the sampled frame to the reference; a reset reason if it fails."""
        assert self._ref is not None
        ok = self._valid(x, self._ref, c)
        n = int(ok.sum())
        if n < _MIN_VALID:
            return None, f"only {n} of {x.size} sampled pixels valid (need {_MIN_VALID})"
        weight = np.ones(n) if c is None else c[ok]
        fit = _fit(
            x[ok],
            self._ref[ok],
            weight,
            self.mode == "affine",
            self.threshold,
            guess=(float(self._chain[0]), float(self._chain[1])),
            ratio=1.0 / self._ref_var,
        )
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
        self._disagreed = np.zeros(x.shape, bool)
        self._mapped = [x.copy()]
        self._chains = [self._chain.copy()]
        self._points = _percentiles(x)
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
        a change of the map's ``(a, b)`` makes at the frame's 10th and 90th
        percentiles ``q``: over the range where the frame has values, so that a change
        of scale traded for one of shift is seen."""
        q = self._points
        return float(np.max(np.abs(change[0] * q + change[1]) / np.abs(level[0] * q + level[1])))

    def _closure(self, x: np.ndarray, c: np.ndarray | None, fit: _Fit) -> None:
        """Updates the walk estimate: how far the frame's map to the frame before the
        last one differs from its map to the reference, beyond what pixel noise explains.

        On a still camera both fits find the same map (the frames show the same scene).
        When the view changes, each fit is biased by what changed between the frame and
        its target, and fits chained from frame to frame (the reference follows the
        view) add their biases up: a walk, which no filter of the maps can tell from
        the network's jitter by one frame, but which the two fits, to targets a frame
        apart, disagree by. The noise of that difference is measured, not modelled: the
        same fit on two interleaved halves of the pixels (the same content, so the same
        bias) differs by pixel noise only.
        """
        if len(self._mapped) < 2:
            return
        lag = self._mapped[0]
        ok = self._valid(x, lag, c)
        n = int(ok.sum())
        if n < 2 * _MIN_VALID:
            return
        weight = np.ones(n) if c is None else c[ok]
        xs, ls = x[ok], lag[ok]
        guess = (fit.scale, fit.shift)
        halves = []
        for half in (slice(0, None, 2), slice(1, None, 2)):
            other = _fit(
                xs[half], ls[half], weight[half], self.mode == "affine", self.threshold,
                guess, ratio=1.0, search=False, summary=False,
            )  # fmt: skip
            if other is None or not other.scale > 0.0:
                return
            halves.append(np.array([other.scale, other.shift]))
        level = np.array(guess)
        delta = self._relative(0.5 * (halves[0] + halves[1]) - level, level)
        # The mean of the halves has a quarter of their difference's noise variance;
        # half of that is the lag frame's, the rest the frame's own, which the fit to
        # the reference shares.
        noise = self._relative(halves[0] - halves[1], level) ** 2 / 8.0
        self._walk_n += 1
        rate = max(1.0 / self._walk_n, _WALK_RATE)
        self._walk += rate * (delta * delta - _NOISE_MARGIN * noise - self._walk)

    def _update_jitter(self, chain: np.ndarray, dt: float | None) -> None:
        """Updates the jitter estimate with ``chain``: what a straight line through the
        last two chained maps does not predict (a second difference: real change is
        smooth, the network's jitter is white), as a relative change of the output."""
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

    def _clip(self, change: np.ndarray, level: np.ndarray, spread: float) -> np.ndarray:
        """``change`` shortened to at most :data:`_CLIP` jitter standard deviations
        (times ``sqrt(spread)``, never below :data:`_CLIP_LEAST`), relative: one frame's outlying jitter (a network with
        heavy tails) must not pass for motion. A real change still passes a few frames
        later: each frame moves the filters by up to that much."""
        if self._jitter_n < _JITTER_MIN:
            return change
        jitter = self._jitter * (1.0 + _JITTER_MIN / self._jitter_n) * spread
        limit = max(_CLIP * math.sqrt(jitter), _CLIP_LEAST)
        size = self._relative(change, level)
        return change * (limit / size) if size > limit > 0.0 else change

    def _jitter_bound(self) -> float:
        """Factor from the jitter estimate to its one-sided 95 % upper confidence bound.

        The estimate is a mean of squared second differences, which are correlated
        (those of white noise: -2/3 at lag 1, 1/6 at lag 2), so ``n`` of them carry
        about ``n / (1 + 2 * (4/9 + 1/36)) ~ n / 2`` degrees of freedom, never more
        than the running mean's memory (its floor rate :data:`_JITTER_RATE`) holds.
        The chi-square quantile is the Wilson-Hilferty approximation.
        """
        n = min(float(self._jitter_n), 2.0 / _JITTER_RATE - 1.0)
        dof = max(n / (1.0 + 2.0 * (4.0 / 9.0 + 1.0 / 36.0)), 1.0)
        c = 2.0 / (9.0 * dof)
        low = (1.0 - c - _FALSE_ALARM_Z * math.sqrt(c)) ** 3
        return 1.0 / max(low, 0.05)

    def _walk_ratio(self) -> float:
        """The fits' walk over the network's jitter (mean squares, per frame)."""
        if self._jitter_n < 1:
            return 0.0
        # A mean of few squares is often far below the truth: widen it while young.
        jitter = self._jitter * (1.0 + _JITTER_MIN / self._jitter_n)
        return max(self._walk, 0.0) / (jitter + 1e-12)

    def _moving(self, walk_ratio: float) -> float:
        """How surely the camera (or the scene) moves: 0 = still, 1 = moving.

        The larger of two signs: the tracker's level parting from the gauge by more
        than jitter alone would (in units of how far apart jitter alone would put
        them), and the fits walking (:meth:`_closure`) by more than a tenth of the
        jitter per frame.
        """
        walk = (walk_ratio - _WALK_STILL) / (_WALK_MOVING - _WALK_STILL)
        # held for a few frames: a turn does not stop because one frame's fits agree
        walk = max(min(max(walk, 0.0), 1.0), self._walking - 1.0 / _WALK_HOLD)
        self._walking = walk
        if self._jitter_n < _JITTER_MIN:
            return walk
        theta = 1.0 - self._tracker_gain
        tracker = (1.0 - theta) * (1.0 + 4.0 * theta + 5.0 * theta * theta) / (1.0 + theta) ** 3
        # The jitter's upper confidence bound: a mean of few squares is often far
        # below the truth, and a jitter taken too small sees motion in a still camera's
        # run of same-sign draws (then the gauge restarts off the long-run level).
        jitter = self._jitter * self._jitter_bound()
        spread = math.sqrt(jitter * (tracker + 1.0 / self._steady)) + 1e-12
        distance = self._relative(self._level - self._gauge, self._gauge) / spread
        apart = min(max((distance - _STILL_BELOW) / (_MOVING_ABOVE - _STILL_BELOW), 0.0), 1.0)
        return max(apart, walk)

    def _update_reference(
        self, x: np.ndarray, chain: np.ndarray, moving: float, dt: float | None
    ) -> None:
        """Averages the frame, mapped into stream units, into the reference.

        While still, each pixel is the mean of the frames since the reference started
        (pixel noise averages out, and every frame is fitted to the same scene, so fit
        errors do not add up frame after frame); while moving, the frame replaces it,
        as do pixels that disagree with it twice running (an object that moved) or had
        no value.
        """
        ref = self._ref
        assert ref is not None
        mapped = chain[0] * x + chain[1]
        gain = 1.0 / (1.0 / self._ref_var + 1.0)  # a plain mean
        if dt is not None and dt > 0.0:
            gain = max(gain, min(dt / _MEMORY, 1.0))
        gain = max(gain, moving)
        self._ref_var = (1.0 - gain) ** 2 * self._ref_var + gain * gain
        with np.errstate(invalid="ignore", divide="ignore"):
            known = np.isfinite(ref) & (ref > 0.0)
            agree = known & (np.abs(mapped / ref - 1.0) < self.threshold)
            # Once is as likely the tail of the pixel noise, and taking those values
            # would pull the reference towards the side the threshold favours.
            changed = ~agree & (self._disagreed | ~known)
            self._disagreed = ~agree
            g = np.where(agree, gain, np.where(changed, 1.0, 0.0))
            new = np.isfinite(mapped)
        ref[new] += g[new] * (mapped[new] - ref[new])
        self._mapped.append(mapped)
        if len(self._mapped) > 2:
            self._mapped.pop(0)

    def _follow(
        self, arr: np.ndarray, x: np.ndarray, c: np.ndarray | None, fit: _Fit, dt: float | None
    ) -> StabilizedFrame:
        """Filters the fitted map and maps the frame."""
        chain = np.array([fit.scale, fit.shift])  # T_t, into stream units
        self._chain = chain
        self._points = _percentiles(x)
        self._closure(x, c, fit)
        self._update_jitter(chain, dt)
        ratio = self._walk_ratio()
        alpha, still = self._filter(chain, ratio, self._fade(fit.inlier_fraction), dt)
        moving = 1.0 if self.smoothing >= 1.0 else self._moving(ratio)
        if moving >= 1.0:  # the gauge starts again from the tracker, worth its memory
            gain = self._tracker_gain
            self._gauge = self._level.copy()
            self._steady = max(1, min(_GAUGE_FRAMES, round((2.0 - gain) / gain)))
        level = self._gauge + moving * (self._level - self._gauge)
        la, lb = float(level[0]), float(level[1])
        if not (math.isfinite(la) and math.isfinite(lb) and la > 0.0):
            return self._start(arr, x, f"filtered scale {la:.4g} is not positive", fit)
        if self.mode == "scale":
            lb = 0.0
        # F_t = L_t^-1 o T_t.
        a = float(chain[0]) / la
        b = (float(chain[1]) - lb) / la if self.mode == "affine" else 0.0
        reason = self._refused(a, b, fit, moving, ratio)
        if reason:
            return self._start(arr, x, reason, fit)
        self._update_reference(x, chain, moving, dt)
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
            gain=still + moving * (alpha - still),
            moving=moving,
            reset=False,
            reason="",
            resets=self._resets,
        )

    def _filter(
        self, chain: np.ndarray, ratio: float, fade: float, dt: float | None
    ) -> tuple[float, float]:
        """Moves the tracker and the gauge towards the frame's map ``chain``.

        ``ratio`` is the fits' walk over the jitter (:meth:`_walk_ratio`), ``fade`` how
        far a thin fit pulls the levels towards its own frame (:meth:`_fade`). Returns
        the tracker's level gain ``alpha`` and the gauge's weight of this frame.
        """
        # An outlying fit is taken for the network's jitter only when the fit is good.
        trust = max(1.0 - fade, 1e-6) ** 2
        # The tracker: a critically damped alpha-beta filter of (a, b) whose level gain
        # is at least the steady-state Kalman gain of a random walk (the fits' walk)
        # seen through white noise (the jitter).
        # (a walk is often a drift for frames on end, which a filter tuned to a random
        # walk lags: counted _DRIFT times over)
        kalman = _kalman_gain(_DRIFT * ratio)
        gain = max(self.smoothing, 1.0 - math.sqrt(1.0 - kalman))
        gain += (1.0 - gain) * fade
        self._tracker_gain = gain
        discount = 1.0 - gain
        alpha, beta = 1.0 - discount * discount, gain * gain
        innovation = self._clip(chain - (self._level + self._trend), chain, 1.0 / trust)
        self._level = self._level + self._trend + alpha * innovation
        self._trend = self._trend + beta * innovation
        # The gauge: a slowly growing mean of T while nothing moves, but never slower
        # than the steady-state Kalman gain of the fits' walk (what of it exceeds
        # _WALK_FLOOR) seen through the jitter: a walk too slow to count as motion (a
        # slow turn under small jitter) still adds up over the gauge's memory, and the
        # output would lag it.
        still = max(self._still_gain(dt), _kalman_gain(max(ratio - _WALK_FLOOR, 0.0)))
        still += (1.0 - still) * fade
        step = self._clip(chain - self._gauge, chain, (1.0 + 1.0 / self._steady) / trust)
        self._gauge = self._gauge + still * step
        self._steady += 1
        return alpha, still

    def _refused(self, a: float, b: float, fit: _Fit, moving: float, ratio: float) -> str:
        """Why the map ``(a, b)`` back to the level must not be applied (the stream
        restarts instead); empty when it may.

        A map that changes depth by more than :data:`_MAX_CORRECTION` (relative, at the
        frame's 10th and 90th percentiles) or scales its contrast beyond ``1 +
        _MAX_CORRECTION`` either way is refused, except on a still camera under a clean
        fit (most pixels agree, closely), once: a large jitter of a heavy-tailed network
        (a shift moves the far end of inverse depth a long way); restarting from that
        frame would keep its jitter in every later output. While moving it is the view's
        change; before the jitter is known, twice the bound or twice running, it is not
        taken.
        """
        correction = self._relative(np.array([a - 1.0, b]), np.array([1.0, 0.0]))
        excused = self._excused
        self._excused = False
        contrast = 1.0 / (1.0 + _MAX_CORRECTION) <= a <= 1.0 + _MAX_CORRECTION
        clean = (
            not excused
            and correction <= 2.0 * _MAX_CORRECTION
            and 1.0 / (1.0 + 2.0 * _MAX_CORRECTION) <= a <= 1.0 + 2.0 * _MAX_CORRECTION
            and self._jitter_n >= _JITTER_MIN
            and fit.inlier_fraction >= _GOOD_GUESS
            and fit.residual <= 0.5 * self.max_residual
            and moving < 0.5
            and ratio < _WALK_STILL
        )
        if not (correction <= _MAX_CORRECTION and contrast):
            self._excused = clean
        if not (correction <= _MAX_CORRECTION or clean):
            return (
                f"the map would change depth by {100 * correction:.0f} % "
                f"(more than {100 * _MAX_CORRECTION:.0f} %)"
            )
        # A shift can hide a change of scale at the frame's own values (a frame whose
        # values hardly vary): the frame's depth contrast must not change that much
        # either (the same exception for a clean fit on a still camera).
        if not (contrast or clean):
            return (
                f"the map would scale depth contrast by {a:.3g} "
                f"(outside {1.0 / (1.0 + _MAX_CORRECTION):.3g}..{1.0 + _MAX_CORRECTION:.3g})"
            )
        return ""


@dataclass(frozen=True)
class TemporalOptions(Options):
    """Whether and how depth is stabilised over time (the node's ``temporal.*``
    parameters, the bag tool's ``--temporal*`` flags): one source of their defaults and
    ranges.

    Attributes:
        enabled: stabilise each camera stream (off by default: it changes what relative
            depth means, see :class:`TemporalStabilizer`).
        smoothing: least weight of each new frame's level in the tracker (the output
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
        "Least weight of each new frame's level in the tracker of the fitted maps that "
        "the output follows while the camera moves (more while the fits walk, as when "
        "turning; on a still camera a slowly growing mean of the frames takes over); "
        "smaller = steadier, 1 = raw frames.",
        range=(0.01, 1.0),
        param="temporal.smoothing",
        flag="--temporal-smoothing",
        summary=(
            "Least weight of each new frame in the tracker the output follows while the "
            "camera moves; smaller = steadier, 1 = raw frames."
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
