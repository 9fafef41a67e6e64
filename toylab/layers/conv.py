r"""Spatial layers over flat feature vectors: :class:`Conv`, :class:`AvgPool`, :class:`MaxPool`.

A feature map of shape ``(H, W, C)`` is stored flat, HWC row-major: channel ``c`` at
row ``i``, column ``j`` is entry ``(i W + j) C + c`` of the layer's ``(..., H W C)``
values (an image of one channel: pixel ``(i, j)`` at ``i W + j``). Every kind maps
``(..., fan_in) -> (..., fan_out)`` like :class:`~toylab.layers.Dense`, so a
:class:`~toylab.network.Network` mixes them freely with dense layers.

**Convolution** (cross-correlation, as ``flax.nnx.Conv`` and ``lax.conv_general_dilated``
compute it): with the input zero-padded by ``(top, bottom), (left, right)``,

.. math::

    y_{o_i, o_j, d} = b_d + \sum_{a < k_h} \sum_{e < k_w} \sum_c
        x^{pad}_{s_h o_i + a,\; s_w o_j + e,\; c}\, K_{a, e, c, d},
    \qquad H' = \lfloor (H + top + bottom - k_h) / s_h \rfloor + 1

(likewise ``W'``). ``padding="same"`` is lax's rule for any stride: ``H' = ceil(H /
s_h)``, the total padding ``max((H' - 1) s_h + k_h - H, 0)`` split with the smaller
half on top (left); ``"valid"`` pads nothing. The dense form (:meth:`Conv.arrays`)
scatters copies of the kernel entries into ``W[(i W + j) C + c, (o_i W' + o_j) C' +
d]`` with ``(i, j) = (s_h o_i + a - top, s_w o_j + e - left)`` (no arithmetic: every
entry is a kernel value or zero; each ``(input, output)`` pair receives at most one
kernel entry), so every exact algorithm consumes a conv net unchanged.

**Pooling** over windows ``(w_h, w_w)`` with stride (default: the window), no padding
(flax's ``"VALID"``): :class:`AvgPool` takes the mean (affine: its dense form has
``1 / (w_h w_w)`` entries, the mean's one rounding apart from :meth:`AvgPool.apply`),
:class:`MaxPool` the maximum (not affine: :meth:`MaxPool.arrays` raises
:class:`~toylab._errors.NotApplicable`). Its derivative routes each window's tangent
to the window's **first** maximal entry in row-major window order (ties: the smallest
``(a, e)``), the derivative of the max on the piece that this choice selects.

NumPy inputs and weights compute in NumPy (float64 stays float64): im2col (the
``k_h k_w C`` patches of a chunk of the batch times the kernel as a matrix, no loop
over pixels); :meth:`Conv.transpose` scatters the products back (col2im, the exact
adjoint). JAX
computes with ``lax.conv_general_dilated`` (NHWC / HWIO) and its
``jax.linear_transpose``. A kernel with leading member axes (a stacked ensemble,
:meth:`toylab.network.Network.stack`) broadcasts against the batch like
``h @ kernel`` does for :class:`~toylab.layers.Dense`; ``vmap`` over the members is
the main path.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from toylab._errors import NotApplicable, fail
from toylab._validate import is_int

__all__ = ["AvgPool", "Conv", "MaxPool", "SpatialDense", "conv_padding"]

Pads = tuple[tuple[int, int], tuple[int, int]]

# NumPy im2col works through the batch in chunks of about this many patch entries
# (float64: 64 MB), so memory stays bounded for any batch
_CHUNK = 1 << 23


def _xp(*arrays: Any) -> Any:
    return jnp if any(isinstance(a, jax.Array) for a in arrays) else np


def _pair(where: str, name: str, value: Any) -> tuple[int, int]:
    """An int or a pair of ints >= 1 as a pair."""
    pair = (value, value) if is_int(value) else value
    if (
        not isinstance(pair, Sequence)
        or len(pair) != 2
        or not all(is_int(v) and int(v) >= 1 for v in pair)
    ):
        raise fail(where, name, value, "an integer >= 1 or a pair of them (rows, columns)")
    return int(pair[0]), int(pair[1])


def _shape3(where: str, value: Any) -> tuple[int, int, int]:
    if (
        not isinstance(value, Sequence)
        or len(value) != 3
        or not all(is_int(v) and int(v) >= 1 for v in value)
    ):
        raise fail(where, "in_shape", value, "(H, W, C): three integers >= 1")
    return int(value[0]), int(value[1]), int(value[2])


def _norm_padding(where: str, padding: Any) -> str | Pads:
    if isinstance(padding, str):
        p = padding.lower()
        if p not in ("same", "valid"):
            raise fail(
                where, "padding", padding,
                "'same', 'valid' or ((top, bottom), (left, right))",
            )  # fmt: skip
        return p
    try:
        (t, b), (left, r) = padding
    except (TypeError, ValueError):
        raise fail(
            where, "padding", padding, "'same', 'valid' or ((top, bottom), (left, right))"
        ) from None
    if not all(is_int(v) and int(v) >= 0 for v in (t, b, left, r)):
        raise fail(
            where, "padding", padding, "non-negative integers ((top, bottom), (left, right))"
        )
    return (int(t), int(b)), (int(left), int(r))


def conv_padding(
    in_hw: tuple[int, int], window: tuple[int, int], stride: tuple[int, int], padding: str | Pads
) -> Pads:
    """``((top, bottom), (left, right))`` of a padding spec (lax's rule for ``"same"``)."""
    if padding == "valid":
        return (0, 0), (0, 0)
    if padding == "same":
        out = []
        for n, k, s in zip(in_hw, window, stride, strict=True):
            o = -(-n // s)
            total = max((o - 1) * s + k - n, 0)
            out.append((total // 2, total - total // 2))
        return out[0], out[1]
    return padding  # type: ignore[return-value]


def _out_hw(in_hw: tuple[int, int], window: tuple[int, int], stride: tuple[int, int], pads: Pads):
    return tuple(
        (n + lo + hi - k) // s + 1
        for n, k, s, (lo, hi) in zip(in_hw, window, stride, pads, strict=True)
    )


def _slices(di: int, dj: int, stride: tuple[int, int], out_hw: Any) -> tuple[Any, ...]:
    """The strided window ``(di, dj)`` of a padded map: ``[..., rows, cols, :]``."""
    sh, sw = stride
    ho, wo = out_hw
    return (
        Ellipsis,
        slice(di, di + sh * (ho - 1) + 1, sh),
        slice(dj, dj + sw * (wo - 1) + 1, sw),
        slice(None),
    )


def _pad(xp: Any, x: Any, pads: Pads) -> Any:
    if pads == ((0, 0), (0, 0)):
        return x
    width = [(0, 0)] * (x.ndim - 3) + [pads[0], pads[1], (0, 0)]
    return xp.pad(x, width)


def _scatter_add(xp: Any, target: Any, index: tuple[Any, ...], values: Any) -> Any:
    if xp is np:
        target[index] += values
        return target
    return target.at[index].add(values)


class _Spatial:
    """Shared geometry of the spatial kinds (``in_shape`` and the output grid)."""

    prefix: ClassVar[str]
    affine: ClassVar[bool] = True
    in_shape: tuple[int, int, int]

    @property
    def fan_in(self) -> int:
        return math.prod(self.in_shape)

    @property
    def fan_out(self) -> int:
        return math.prod(self.out_shape)

    @property
    def out_shape(self) -> tuple[int, int, int]:  # pragma: no cover - every kind overrides
        raise NotImplementedError

    def _spatial(self, h: Any) -> Any:
        """``(..., H W C) -> (..., H, W, C)``, with a clear error for a wrong width."""
        if h.shape[-1] != self.fan_in:
            raise fail(
                type(self).__name__, "input", f"an array of shape {tuple(h.shape)}",
                f"(..., {self.fan_in}): flat {self.in_shape} feature maps (HWC row-major)",
            )  # fmt: skip
        return h.reshape((*h.shape[:-1], *self.in_shape))


# --------------------------------------------------------------------------- convolution


@dataclasses.dataclass(frozen=True)
class Conv(_Spatial):
    """A 2-D convolution over flat HWC feature maps (see the module docstring).

    ``kernel`` ``(kh, kw, C_in, C_out)`` (HWIO, flax's layout), ``bias`` ``(C_out,)``
    (leading member axes allowed on both); static ``in_shape=(H, W, C_in)``,
    ``stride`` (an int or a pair) and ``padding`` (``"same"``, ``"valid"`` or
    ``((top, bottom), (left, right))``).
    """

    kernel: Any
    bias: Any
    in_shape: tuple[int, int, int]
    stride: Any = 1
    padding: Any = "same"

    prefix: ClassVar[str] = "conv"

    def __post_init__(self) -> None:
        # only static checks: unflattening (jit, vmap) calls the constructor with tracers
        object.__setattr__(self, "in_shape", _shape3("Conv", self.in_shape))
        object.__setattr__(self, "stride", _pair("Conv", "stride", self.stride))
        object.__setattr__(self, "padding", _norm_padding("Conv", self.padding))
        shape = getattr(self.kernel, "shape", None)
        if isinstance(shape, tuple) and len(shape) >= 4 and shape[-2] != self.in_shape[2]:
            raise fail(
                "Conv", "kernel", f"an array of shape {shape}",
                f"(kh, kw, {self.in_shape[2]}, C_out): C_in must match in_shape={self.in_shape}",
            )  # fmt: skip
        if isinstance(shape, tuple) and len(shape) < 4:
            raise fail("Conv", "kernel", f"an array of shape {shape}", "(kh, kw, C_in, C_out)")
        if isinstance(shape, tuple) and min(self.out_shape[:2]) < 1:
            raise fail(
                "Conv", "kernel", f"an array of shape {shape}",
                f"a window (kh, kw) that fits the padded {self.in_shape[:2]} input "
                f"(padding {self.pads})",
            )  # fmt: skip

    @property
    def window(self) -> tuple[int, int]:
        return int(self.kernel.shape[-4]), int(self.kernel.shape[-3])

    @property
    def pads(self) -> Pads:
        """The explicit padding ``((top, bottom), (left, right))``."""
        return conv_padding(self.in_shape[:2], self.window, self.stride, self.padding)

    @property
    def out_shape(self) -> tuple[int, int, int]:
        ho, wo = _out_hw(self.in_shape[:2], self.window, self.stride, self.pads)
        return ho, wo, int(self.kernel.shape[-1])

    # ------------------------------------------------------------------ evaluation
    def _lax(self, h: Any, kernel: Any) -> Any:
        """``h @ W`` by ``lax.conv_general_dilated`` (an unstacked kernel)."""
        x = self._spatial(h)
        dt = jnp.result_type(x, kernel)
        y = lax.conv_general_dilated(
            x.reshape((-1, *self.in_shape)).astype(dt),
            kernel.astype(dt),
            window_strides=self.stride,
            padding=self.pads,
            dimension_numbers=("NHWC", "HWIO", "NHWC"),
        )
        return y.reshape((*h.shape[:-1], self.fan_out))

    def _member_kernel(self, h: Any, arr: Any, tail: int) -> Any:
        """``arr`` (leading member axes ``L``, then ``tail`` axes) shaped to broadcast
        against a batch of feature maps ``(..., rows, H', W', ...)`` like ``h @ kernel``."""
        lead = arr.shape[: arr.ndim - tail]
        if not lead:
            return arr
        rows = (1,) if h.ndim >= 2 else ()
        return arr.reshape((*lead, *rows, *arr.shape[arr.ndim - tail :]))

    def _shift(self, h: Any) -> Any:
        """``h @ W`` (no bias), spatial ``(..., H', W', C')``: NumPy im2col, or (member
        axes on the kernel) a sum over the kernel offsets that broadcasts the members."""
        xp = _xp(h, self.kernel)
        if xp is np and self.kernel.ndim == 4:
            return self._im2col(h)
        x = _pad(xp, self._spatial(h), self.pads)
        ho, wo, _ = self.out_shape
        kh, kw = self.window
        k = self._member_kernel(h, self.kernel, 4)
        out = None
        for a in range(kh):
            for e in range(kw):
                sl = x[_slices(a, e, self.stride, (ho, wo))]
                # (..., H', W', C) @ (L, [1], 1, C, C'): the members broadcast
                term = sl @ k[..., None, a, e, :, :]
                out = term if out is None else out + term
        return out

    def _im2col(self, h: Any) -> Any:
        """NumPy ``h @ W`` (no bias): the ``(k_h k_w C)`` patches of a chunk of the batch
        times the kernel as a ``(k_h k_w C, C')`` matrix, spatial ``(..., H', W', C')``."""
        x = _pad(np, self._spatial(h), self.pads)
        batch = x.shape[:-3]
        x = x.reshape((-1, *x.shape[-3:]))
        ho, wo, co = self.out_shape
        (kh, kw), (sh, sw) = self.window, self.stride
        kmat = self.kernel.reshape(-1, co)  # rows in (a, e, c) order
        out = np.empty((x.shape[0], ho, wo, co), dtype=np.result_type(x, kmat))
        step = max(1, _CHUNK // (ho * wo * kmat.shape[0]))
        for s in range(0, x.shape[0], step):
            win = np.lib.stride_tricks.sliding_window_view(x[s : s + step], (kh, kw), axis=(1, 2))
            win = win[:, : (ho - 1) * sh + 1 : sh, : (wo - 1) * sw + 1 : sw]  # (n, H', W', C, a, e)
            cols = win.transpose(0, 1, 2, 4, 5, 3).reshape(-1, kmat.shape[0])
            out[s : s + step] = (cols @ kmat).reshape(-1, ho, wo, co)
        return out.reshape((*batch, ho, wo, co))

    def linear(self, h: Any, layers: Sequence[Any] = ()) -> Any:
        """``h @ W``: the convolution without its bias (tangents)."""
        if _xp(h, self.kernel) is jnp and self.kernel.ndim == 4:
            return self._lax(h, self.kernel)
        y = self._shift(h)
        return y.reshape((*y.shape[:-3], self.fan_out))

    def apply(self, h: Any, layers: Sequence[Any] = ()) -> Any:
        """``h @ W + b``."""
        if _xp(h, self.kernel) is jnp and self.kernel.ndim == 4:
            y = self._lax(h, self.kernel)
            y = y.reshape((*y.shape[:-1], *self.out_shape)) + self.bias
        else:
            y = self._shift(h) + self._member_kernel(h, self.bias, 1)[..., None, None, :]
        return y.reshape((*y.shape[:-3], self.fan_out))

    def transpose(self, g: Any, layers: Sequence[Any] = ()) -> Any:
        """``g @ W.T``: the exact adjoint of :meth:`linear` (back-propagation)."""
        if g.shape[-1] != self.fan_out:
            raise fail(
                "Conv.transpose", "g", f"an array of shape {tuple(g.shape)}",
                f"(..., {self.fan_out}): flat {self.out_shape} feature maps",
            )  # fmt: skip
        xp = _xp(g, self.kernel)
        if xp is jnp and self.kernel.ndim == 4:
            dt = jnp.result_type(g, self.kernel)
            spec = jax.ShapeDtypeStruct((*g.shape[:-1], self.fan_in), dt)
            (out,) = jax.linear_transpose(lambda h: self._lax(h, self.kernel), spec)(g.astype(dt))
            return out
        ho, wo, co = self.out_shape
        kh, kw = self.window
        (top, bottom), (left, right) = self.pads
        h, w, c = self.in_shape
        if self.kernel.ndim == 4:  # NumPy col2im, a chunk of the batch at a time
            gs = g.reshape(-1, ho, wo, co)
            kt = self.kernel.reshape(-1, co).T  # (C', k_h k_w C)
            res = np.zeros(
                (gs.shape[0], h + top + bottom, w + left + right, c), np.result_type(g, kt)
            )
            step = max(1, _CHUNK // (ho * wo * kt.shape[1]))
            for s in range(0, gs.shape[0], step):
                cols = (gs[s : s + step] @ kt).reshape(-1, ho, wo, kh, kw, c)
                for a in range(kh):
                    for e in range(kw):
                        res[s : s + step][_slices(a, e, self.stride, (ho, wo))] += cols[
                            :, :, :, a, e, :
                        ]
            res = res[:, top : top + h, left : left + w, :]
            return res.reshape((*g.shape[:-1], self.fan_in))
        gs = g.reshape((*g.shape[:-1], ho, wo, co))
        kt = xp.swapaxes(self._member_kernel(g, self.kernel, 4), -1, -2)  # (..., kh, kw, C', C)
        terms = [gs @ kt[..., None, a, e, :, :] for a in range(kh) for e in range(kw)]
        batch = terms[0].shape[:-3]
        res = xp.zeros((*batch, h + top + bottom, w + left + right, c), dtype=terms[0].dtype)
        for i, t in enumerate(terms):
            res = _scatter_add(xp, res, _slices(i // kw, i % kw, self.stride, (ho, wo)), t)
        res = res[..., top : top + h, left : left + w, :]
        return res.reshape((*batch, self.fan_in))

    def arrays(self, layers: Sequence[Any] = ()) -> tuple[Any, Any]:
        """The dense ``(W, b)``: ``W`` ``(..., H W C, H' W' C')`` holds copies of the
        kernel entries (see the module docstring), ``b`` the bias tiled over positions."""
        xp = _xp(self.kernel, self.bias)
        rows, cols, a, e = _conv_index(
            self.in_shape, self.out_shape, self.window, self.stride, self.pads
        )
        c_in, c_out = self.in_shape[2], self.out_shape[2]
        ri = rows[:, None, None] + np.arange(c_in)[None, :, None]
        ci = cols[:, None, None] + np.arange(c_out)[None, None, :]
        vals = self.kernel[..., a, e, :, :]  # (L..., n, C, C')
        lead = self.kernel.shape[:-4]
        w = xp.zeros((*lead, self.fan_in, self.fan_out), dtype=self.kernel.dtype)
        if xp is np:
            w[..., ri, ci] = vals
        else:
            w = w.at[..., ri, ci].set(vals)
        ho, wo, _ = self.out_shape
        b = xp.broadcast_to(self.bias[..., None, :], (*lead, ho * wo, c_out))
        return w, b.reshape((*lead, self.fan_out))


def _conv_index(
    in_shape: tuple[int, int, int],
    out_shape: tuple[int, int, int],
    window: tuple[int, int],
    stride: tuple[int, int],
    pads: Pads,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every in-range ``(input position, output position, kernel offset)`` triple of a
    sliding window: the flat input row base ``(i W + j) C``, the output column base
    ``(o_i W' + o_j) C'`` and the offset ``(a, e)``."""
    h, w, c = in_shape
    ho, wo, co = out_shape
    oi, oj, a, e = np.meshgrid(
        np.arange(ho), np.arange(wo), np.arange(window[0]), np.arange(window[1]), indexing="ij"
    )
    i = oi * stride[0] + a - pads[0][0]
    j = oj * stride[1] + e - pads[1][0]
    ok = (i >= 0) & (i < h) & (j >= 0) & (j < w)
    rows = (i[ok] * w + j[ok]) * c
    cols = (oi[ok] * wo + oj[ok]) * co
    return rows, cols, a[ok], e[ok]


jax.tree_util.register_dataclass(
    Conv, data_fields=["kernel", "bias"], meta_fields=["in_shape", "stride", "padding"]
)


# --------------------------------------------------------------------------- pooling


@dataclasses.dataclass(frozen=True)
class _Pool(_Spatial):
    in_shape: tuple[int, int, int]
    window: Any
    stride: Any = None

    prefix: ClassVar[str] = "pool"
    symbol: ClassVar[str]

    def __post_init__(self) -> None:
        where = type(self).__name__
        object.__setattr__(self, "in_shape", _shape3(where, self.in_shape))
        window = _pair(where, "window", self.window)
        stride = window if self.stride is None else _pair(where, "stride", self.stride)
        if window[0] > self.in_shape[0] or window[1] > self.in_shape[1]:
            raise fail(
                where,
                "window",
                self.window,
                f"at most the feature map's (H, W) = {self.in_shape[:2]}",
            )
        object.__setattr__(self, "window", window)
        object.__setattr__(self, "stride", stride)

    @property
    def out_shape(self) -> tuple[int, int, int]:
        ho, wo = _out_hw(self.in_shape[:2], self.window, self.stride, ((0, 0), (0, 0)))
        return ho, wo, self.in_shape[2]

    def _windows(self, h: Any) -> list[Any]:
        """The ``w_h w_w`` strided views ``(..., H', W', C)``, row-major window order."""
        x = self._spatial(h)
        ho, wo, _ = self.out_shape
        return [
            x[_slices(a, e, self.stride, (ho, wo))]
            for a in range(self.window[0])
            for e in range(self.window[1])
        ]

    def _flat(self, y: Any) -> Any:
        return y.reshape((*y.shape[:-3], self.fan_out))

    def _scatter(self, g: Any, terms: list[Any]) -> Any:
        """``sum_t`` of window terms ``(..., H', W', C)`` written back onto the input grid."""
        xp = _xp(g)
        ho, wo, _ = self.out_shape
        batch = terms[0].shape[:-3]
        res = xp.zeros((*batch, *self.in_shape), dtype=terms[0].dtype)
        ww = self.window[1]
        for i, t in enumerate(terms):
            res = _scatter_add(xp, res, _slices(i // ww, i % ww, self.stride, (ho, wo)), t)
        return res.reshape((*batch, self.fan_in))

    def _check_out(self, g: Any, where: str) -> Any:
        if g.shape[-1] != self.fan_out:
            raise fail(
                where, "g", f"an array of shape {tuple(g.shape)}",
                f"(..., {self.fan_out}): flat {self.out_shape} feature maps",
            )  # fmt: skip
        return g.reshape((*g.shape[:-1], *self.out_shape))

    def _dtype(self, layers: Sequence[Any]) -> Any:
        leaves = jax.tree.leaves(tuple(layers))
        return np.result_type(*(leaf.dtype for leaf in leaves)) if leaves else np.float64


@dataclasses.dataclass(frozen=True)
class AvgPool(_Pool):
    """The mean over each ``window`` (stride: default the window; no padding). Affine,
    without parameters; in a :class:`~toylab.network.Network` it is followed by
    ``"identity"``."""

    symbol: ClassVar[str] = "avg"

    def linear(self, h: Any, layers: Sequence[Any] = ()) -> Any:
        views = self._windows(h)
        total = views[0]
        for v in views[1:]:
            total = total + v
        return self._flat(total / len(views))

    apply = linear

    def transpose(self, g: Any, layers: Sequence[Any] = ()) -> Any:
        gs = self._check_out(g, "AvgPool.transpose") / (self.window[0] * self.window[1])
        return self._scatter(g, [gs] * (self.window[0] * self.window[1]))

    def arrays(self, layers: Sequence[Any] = ()) -> tuple[Any, Any]:
        """The dense ``(W, b)`` (NumPy, the network's dtype): ``W`` has ``1 / (w_h w_w)``
        at ``((i W + j) C + c, (o_i W' + o_j) C + c)`` for each window member, ``b = 0``."""
        dt = self._dtype(layers)
        rows, cols, _, _ = _conv_index(
            self.in_shape, self.out_shape, self.window, self.stride, ((0, 0), (0, 0))
        )
        c = np.arange(self.in_shape[2])
        w = np.zeros((self.fan_in, self.fan_out), dtype=dt)
        w[rows[:, None] + c, cols[:, None] + c] = 1.0 / (self.window[0] * self.window[1])
        return w, np.zeros(self.fan_out, dtype=dt)


@dataclasses.dataclass(frozen=True)
class MaxPool(_Pool):
    """The maximum over each ``window`` (stride: default the window; no padding).

    Not affine: :meth:`arrays` raises :class:`~toylab._errors.NotApplicable`, and the
    network differentiates it with :meth:`linear_at` / :meth:`transpose_at` (the
    derivative at ``h`` routes to each window's first maximal entry, row-major).
    """

    symbol: ClassVar[str] = "max"
    affine: ClassVar[bool] = False

    def apply(self, h: Any, layers: Sequence[Any] = ()) -> Any:
        xp = _xp(h)
        views = self._windows(h)
        out = views[0]
        for v in views[1:]:
            out = xp.maximum(out, v)
        return self._flat(out)

    def _choice(self, h: Any) -> list[Any]:
        """One boolean mask ``(..., H', W', C)`` per window offset: the first maximum."""
        xp = _xp(h)
        views = self._windows(h)
        best = views[0]
        for v in views[1:]:
            best = xp.maximum(best, v)
        taken = xp.zeros(best.shape, dtype=bool)
        masks = []
        for v in views:
            hit = (v == best) & ~taken
            taken = taken | hit
            masks.append(hit)
        return masks

    def linear_at(self, h: Any, dh: Any, layers: Sequence[Any] = ()) -> Any:
        """The derivative at ``h`` along ``dh``: ``dh`` at each window's first maximum."""
        xp = _xp(h, dh)
        dh = xp.broadcast_to(dh, xp.broadcast_shapes(xp.shape(h), xp.shape(dh)))
        out = None
        for m, v in zip(self._choice(h), self._windows(dh), strict=True):
            term = xp.where(m, v, 0.0)
            out = term if out is None else out + term
        return self._flat(out)

    def transpose_at(self, h: Any, g: Any, layers: Sequence[Any] = ()) -> Any:
        """The transposed derivative at ``h``: ``g`` sent back to each first maximum."""
        xp = _xp(h, g)
        gs = self._check_out(g, "MaxPool.transpose_at")
        return self._scatter(gs, [xp.where(m, gs, 0.0) for m in self._choice(h)])

    def arrays(self, layers: Sequence[Any] = ()) -> tuple[Any, Any]:
        raise NotApplicable(
            "MaxPool: max pooling is not affine, so it has no dense (W, b) form; exact "
            "partitions (toylab.exact.partition, slice_partition, analyze) and "
            "maximize / minimize need average pooling (AvgPool) or strided convolutions "
            "(Conv with stride > 1) instead. toylab.exact.interval_bounds and "
            "linear_bounds do handle max pooling."
        )


for _cls in (AvgPool, MaxPool):
    jax.tree_util.register_dataclass(
        _cls, data_fields=[], meta_fields=["in_shape", "window", "stride"]
    )


# --------------------------------------------------------------------------- dense, named


@dataclasses.dataclass(frozen=True)
class SpatialDense:
    """A dense ``h @ kernel + bias`` whose output is a spatial layer's feature map.

    What :meth:`toylab.network.Network.compose_input` leaves of a first conv (or avg
    pool) layer: the composed affine map as a matrix, still named as the layer it
    replaces (``prefix`` ``"conv"`` or ``"pool"``) with its ``out_shape``, so the
    network's layer keys and addresses do not change.
    """

    kernel: Any
    bias: Any
    prefix: str
    out_shape: tuple[int, int, int]

    affine: ClassVar[bool] = True

    @property
    def fan_in(self) -> int:
        return int(self.kernel.shape[-2])

    @property
    def fan_out(self) -> int:
        return math.prod(self.out_shape)

    def arrays(self, layers: Sequence[Any] = ()) -> tuple[Any, Any]:
        return self.kernel, self.bias

    def apply(self, h: Any, layers: Sequence[Any] = ()) -> Any:
        return h @ self.kernel + self.bias

    def linear(self, h: Any, layers: Sequence[Any] = ()) -> Any:
        return h @ self.kernel

    def transpose(self, g: Any, layers: Sequence[Any] = ()) -> Any:
        return g @ self.kernel.T


jax.tree_util.register_dataclass(
    SpatialDense, data_fields=["kernel", "bias"], meta_fields=["prefix", "out_shape"]
)
