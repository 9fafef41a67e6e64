"""toylab's optional fused CPU kernel: the loss and gradient of a whole MLP ensemble.

The JAX training step spends its time in many passes over ``(members, batch, width)``
tensors (each layer's forward, backward and weight gradient is a separate XLA
operation over all members). This kernel computes one member's forward pass, loss and
back-propagation at a time, with everything in the core's cache, and spreads the members
over XLA's intra-op thread pool. It is called through JAX's foreign-function interface
(``jax.ffi``) from inside the same compiled step: the batch is still sampled by JAX
(``dist.sample``, fused into the step) and the optimizer update, the divergence check and
everything else stay the JAX code of :mod:`toylab.train.core`. Only
``value_and_grad`` of the mean per-example loss is replaced.

Optional and CPU only. :func:`toylab.train.train` uses it when asked
(``kernel="fused"``) and the model is an :class:`~toylab.models.MLP` (or
``OneHotMLP``) with ``relu`` or ``leaky_relu`` units, float32 parameters, and the loss is
``"cross_entropy"`` or ``"mse"``; on other devices (GPU, TPU), JAX's path is the one
program. The C++ source below is compiled at first use with the system's C++ compiler
(``$CXX``, else ``g++``/``c++``/``clang++``; ``-O3 -march=native``, no fast-math so
that non-finite values propagate to the divergence check) into toylab's cache directory
(:func:`toylab._compile_cache.cache_dir`, safe to delete), keyed by a hash of the source,
the compiler, JAX's version and the CPU. Results are deterministic (each member is
computed by one thread in a fixed order), so a resumed run is bit-identical; they agree
with the JAX path to float32 rounding, not bit for bit.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["SOURCE", "pack", "unavailable", "unpack", "unsupported", "value_and_grad"]

TARGET = "toylab_mlp_value_and_grad"
LOSS_KINDS = {("cross_entropy", True): 0, ("mse", True): 1, ("mse", False): 2}
ACT_KINDS = {"relu": 0, "leaky_relu": 1}

SOURCE = r"""// toylab's optional fused CPU kernel: loss and gradient of an ensemble of MLPs.
//
// For every member m (in parallel over XLA's intra-op thread pool), with packed
// parameters theta[m] = [W_0 (d0 x d1, row-major), b_0, W_1, b_1, ...]:
//
//   A_0 = x[m];  Z_{l+1} = A_l W_l + b_l;  A_{l+1} = act(Z_{l+1}) (hidden layers);
//   O = Z_L;  loss[m] = sum_b w[m, b] * ell(O_b, y[m, b]);
//   grad[m] = d loss[m] / d theta[m]   (back-propagation, written out by hand).
//
// ell: 0 = cross-entropy with integer labels (y holds the label as a float),
//      1 = squared error averaged over the K outputs, to the one-hot label,
//      2 = squared error averaged over the K outputs, to the targets y (B x K).
// act: 0 = relu, 1 = leaky relu with slope `slope`.
// Activations are kept feature-major (d x B), so every product runs along the batch
// with the accumulators in registers (tiles of 4 x 16 outputs, 8-float vectors). Each member is computed by
// one thread in a fixed order: the result is deterministic. The weights w are the
// example weights of the batch mean (1/B, or the training mask normalised to sum 1).

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <vector>

#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {


struct Problem {
  const float* x;
  const float* y;
  const float* w;
  const float* theta;
  float* loss;
  float* grad;
  std::vector<int64_t> widths;
  int64_t batch, num_params, y_size;
  int32_t loss_kind, act_kind;
  float slope;
};

// 8-float vectors (GCC/Clang vector extensions: AVX on x86, NEON on ARM)
typedef float v8 __attribute__((vector_size(32)));

inline v8 load8(const float* p) {
  v8 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

inline void store8(float* p, v8 v) { std::memcpy(p, &v, sizeof v); }

// out[r, n] = bias[r] + sum_c mat[r * rs + c * cs] * in[c * N + n]  (r < R, c < C, n < N),
// in register tiles of RT rows x 8*NV columns (independent accumulators, so the
// multiply-adds pipeline); plain loops for the last columns.
template <int RT, int NV>
inline void tile(const float* __restrict mat, int64_t rs, int64_t cs,
                 const float* __restrict bias, const float* __restrict in,
                 float* __restrict out, int64_t r0, int64_t C, int64_t N, int64_t n) {
  v8 acc[RT][NV];
  for (int i = 0; i < RT; ++i) {
    const float init = bias != nullptr ? bias[r0 + i] : 0.0f;
    for (int j = 0; j < NV; ++j) acc[i][j] = v8{} + init;
  }
  for (int64_t c = 0; c < C; ++c) {
    v8 row[NV];
    for (int j = 0; j < NV; ++j) row[j] = load8(in + c * N + n + 8 * j);
    for (int i = 0; i < RT; ++i) {
      const float m = mat[(r0 + i) * rs + c * cs];
      for (int j = 0; j < NV; ++j) acc[i][j] += m * row[j];
    }
  }
  for (int i = 0; i < RT; ++i)
    for (int j = 0; j < NV; ++j) store8(out + (r0 + i) * N + n + 8 * j, acc[i][j]);
}

template <int RT>
inline void rows(const float* __restrict mat, int64_t rs, int64_t cs,
                 const float* __restrict bias, const float* __restrict in,
                 float* __restrict out, int64_t r0, int64_t C, int64_t N) {
  int64_t n = 0;
  for (; n + 16 <= N; n += 16) tile<RT, 2>(mat, rs, cs, bias, in, out, r0, C, N, n);
  for (; n + 8 <= N; n += 8) tile<RT, 1>(mat, rs, cs, bias, in, out, r0, C, N, n);
  for (; n < N; ++n) {
    for (int i = 0; i < RT; ++i) {
      float a = bias != nullptr ? bias[r0 + i] : 0.0f;
      for (int64_t c = 0; c < C; ++c) a += mat[(r0 + i) * rs + c * cs] * in[c * N + n];
      out[(r0 + i) * N + n] = a;
    }
  }
}

void affine(const float* __restrict mat, int64_t rs, int64_t cs, const float* __restrict bias,
            const float* __restrict in, float* __restrict out, int64_t R, int64_t C,
            int64_t N) {
  int64_t r = 0;
  for (; r + 4 <= R; r += 4) rows<4>(mat, rs, cs, bias, in, out, r, C, N);
  for (; r + 2 <= R; r += 2) rows<2>(mat, rs, cs, bias, in, out, r, C, N);
  for (; r < R; ++r) rows<1>(mat, rs, cs, bias, in, out, r, C, N);
}

// out[k * J + j] = sum_b X[k, b] Y[j, b]: tiles of KT x JT dot products along the batch,
// 8 partial sums each (then a fixed-order total, so the result is deterministic)
template <int KT, int JT>
inline void dot_tile(const float* __restrict X, const float* __restrict Y, float* __restrict out,
                     int64_t k0, int64_t j0, int64_t J, int64_t B) {
  v8 acc[KT][JT];
  for (int i = 0; i < KT; ++i)
    for (int j = 0; j < JT; ++j) acc[i][j] = v8{};
  int64_t b = 0;
  for (; b + 8 <= B; b += 8) {
    v8 xs[KT], ys[JT];
    for (int i = 0; i < KT; ++i) xs[i] = load8(X + (k0 + i) * B + b);
    for (int j = 0; j < JT; ++j) ys[j] = load8(Y + (j0 + j) * B + b);
    for (int i = 0; i < KT; ++i)
      for (int j = 0; j < JT; ++j) acc[i][j] += xs[i] * ys[j];
  }
  for (int i = 0; i < KT; ++i) {
    for (int j = 0; j < JT; ++j) {
      float t = 0.0f;
      for (int q = 0; q < 8; ++q) t += acc[i][j][q];
      for (int64_t bb = b; bb < B; ++bb) t += X[(k0 + i) * B + bb] * Y[(j0 + j) * B + bb];
      out[(k0 + i) * J + j0 + j] = t;
    }
  }
}

template <int KT>
inline void dot_rows(const float* __restrict X, const float* __restrict Y, float* __restrict out,
                     int64_t k0, int64_t J, int64_t B) {
  int64_t j = 0;
  for (; j + 2 <= J; j += 2) dot_tile<KT, 2>(X, Y, out, k0, j, J, B);
  for (; j < J; ++j) dot_tile<KT, 1>(X, Y, out, k0, j, J, B);
}

void dots(const float* __restrict X, const float* __restrict Y, float* __restrict out, int64_t K,
          int64_t J, int64_t B) {
  int64_t k = 0;
  for (; k + 4 <= K; k += 4) dot_rows<4>(X, Y, out, k, J, B);
  for (; k < K; ++k) dot_rows<1>(X, Y, out, k, J, B);
}

// sum of x[0..n) (8 partial sums, then a fixed-order total)
inline float sum_of(const float* __restrict x, int64_t n) {
  v8 acc{};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) acc += load8(x + i);
  float t = 0.0f;
  for (int j = 0; j < 8; ++j) t += acc[j];
  for (; i < n; ++i) t += x[i];
  return t;
}

// out = act(z) elementwise (relu: slope 0); branch-free so that it vectorises
void activate(const float* __restrict z, float* __restrict out, int64_t n, float slope) {
  for (int64_t i = 0; i < n; ++i) {
    const float v = z[i];
    out[i] = v > 0.0f ? v : slope * v;
  }
}

// g *= act'(z) elementwise
void backprop_act(const float* __restrict z, float* __restrict g, int64_t n, float slope) {
  for (int64_t i = 0; i < n; ++i) g[i] *= z[i] > 0.0f ? 1.0f : slope;
}

void member(const Problem& p, int64_t m) {
  const int64_t L = static_cast<int64_t>(p.widths.size()) - 1;
  const int64_t B = p.batch;
  int64_t total = 0, widest = 0;
  for (int64_t l = 0; l <= L; ++l) {
    total += p.widths[l];
    widest = std::max(widest, p.widths[l]);
  }
  // feature-major: Z_l and A_l are d_l x B, at offset off[l]; G, Gp: gradients w.r.t. Z
  thread_local std::vector<float> scratch;
  thread_local std::vector<int64_t> offsets;
  const size_t need = static_cast<size_t>(B * total * 2 + 2 * B * widest);
  if (scratch.size() < need) scratch.resize(need);
  offsets.assign(3 * (L + 1), 0);
  int64_t* off = offsets.data();
  int64_t* woff = off + (L + 1);
  int64_t* boff = woff + (L + 1);
  for (int64_t l = 0, o = 0, q = 0; l <= L; ++l) {
    off[l] = o;
    o += B * p.widths[l];
    if (l < L) {
      woff[l] = q;
      q += p.widths[l] * p.widths[l + 1];
      boff[l] = q;
      q += p.widths[l + 1];
    }
  }
  float* Z = scratch.data();
  float* A = Z + B * total;
  float* G = A + B * total;
  float* Gp = G + B * widest;
  const float* theta = p.theta + m * p.num_params;
  float* grad = p.grad + m * p.num_params;
  // forward
  const int64_t d0 = p.widths[0];
  const float* xm = p.x + m * B * d0;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t k = 0; k < d0; ++k) A[off[0] + k * B + b] = xm[b * d0 + k];
  for (int64_t l = 0; l < L; ++l) {
    const int64_t din = p.widths[l], dout = p.widths[l + 1];
    float* z = Z + off[l + 1];
    // Z^T (dout x B) = W^T A^T + b: mat(j, k) = W[k * dout + j]
    affine(theta + woff[l], 1, dout, theta + boff[l], A + off[l], z, dout, din, B);
    if (l + 1 < L) activate(z, A + off[l + 1], B * dout, p.act_kind == 0 ? 0.0f : p.slope);
  }
  // loss and its gradient w.r.t. the outputs (times the example weight), feature-major
  const int64_t K = p.widths[L];
  const float* out = Z + off[L];
  const float* y = p.y + m * B * p.y_size;
  const float* w = p.w + m * B;
  float total_loss = 0.0f;
  for (int64_t b = 0; b < B; ++b) {
    float ell = 0.0f;
    if (p.loss_kind == 0) {
      // logsumexp and softmax from one exponential per class (the gradient is stored
      // in G first as exp(o - top), then normalised)
      const int64_t label = static_cast<int64_t>(y[b]);
      float top = out[b];
      for (int64_t k = 1; k < K; ++k) top = std::max(top, out[k * B + b]);
      float sum = 0.0f;
      for (int64_t k = 0; k < K; ++k) {
        const float e = std::exp(out[k * B + b] - top);
        G[k * B + b] = e;
        sum += e;
      }
      ell = top + std::log(sum) - out[label * B + b];
      const float inv = 1.0f / sum;
      for (int64_t k = 0; k < K; ++k)
        G[k * B + b] = w[b] * (G[k * B + b] * inv - (k == label ? 1.0f : 0.0f));
    } else {
      const float scale = 2.0f / static_cast<float>(K);
      for (int64_t k = 0; k < K; ++k) {
        const float t = p.loss_kind == 1 ? (k == static_cast<int64_t>(y[b]) ? 1.0f : 0.0f)
                                         : y[b * K + k];
        const float d = out[k * B + b] - t;
        ell += d * d;
        G[k * B + b] = w[b] * scale * d;
      }
      ell /= static_cast<float>(K);
    }
    total_loss += w[b] * ell;
  }
  p.loss[m] = total_loss;
  // backward
  for (int64_t l = L - 1; l >= 0; --l) {
    const int64_t din = p.widths[l], dout = p.widths[l + 1];
    const float* W = theta + woff[l];
    // dW[k, j] = sum_b A[k, b] G[j, b];  db[j] = sum_b G[j, b]
    dots(A + off[l], G, grad + woff[l], din, dout, B);
    float* db = grad + boff[l];
    for (int64_t j = 0; j < dout; ++j) db[j] = sum_of(G + j * B, B);
    if (l == 0) break;
    // Gp^T (din x B) = W G^T, times act'(Z_l): mat(k, j) = W[k * dout + j]
    affine(W, dout, 1, nullptr, G, Gp, din, dout, B);
    backprop_act(Z + off[l], Gp, B * din, p.act_kind == 0 ? 0.0f : p.slope);
    std::swap(G, Gp);
  }
}

// Members are claimed one at a time from `next` by the calling thread and by helper
// tasks on XLA's pool. The caller waits for the members to be *done*, not for the tasks
// to run: a task that starts late (every pool thread busy, e.g. several devices' kernels
// at once) finds nothing left and returns, so the caller never waits on the pool.
struct Shared {
  std::atomic<int64_t> next{0};
  std::atomic<int64_t> done{0};
  std::mutex mu;
  std::condition_variable cv;
  Problem problem;
  int64_t num_members = 0;
};

void work(Shared* s) {
  for (int64_t m = s->next.fetch_add(1); m < s->num_members; m = s->next.fetch_add(1)) {
    member(s->problem, m);
    if (s->done.fetch_add(1) + 1 == s->num_members) {
      std::lock_guard<std::mutex> lock(s->mu);
      s->cv.notify_all();
    }
  }
}

ffi::Error ValueAndGrad(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> x, ffi::Buffer<ffi::F32> y,
                        ffi::Buffer<ffi::F32> w, ffi::Buffer<ffi::F32> theta,
                        ffi::Span<const int64_t> widths, int32_t loss_kind, int32_t act_kind,
                        float slope, ffi::ResultBuffer<ffi::F32> loss,
                        ffi::ResultBuffer<ffi::F32> grad) {
  auto xd = x.dimensions(), yd = y.dimensions(), td = theta.dimensions();
  if (xd.size() != 3 || td.size() != 2 || yd.size() != 3 || widths.size() < 2) {
    return ffi::Error::InvalidArgument("toylab fused MLP: unexpected ranks");
  }
  auto shared = std::make_shared<Shared>();
  Problem& p = shared->problem;
  p.x = x.typed_data();
  p.y = y.typed_data();
  p.w = w.typed_data();
  p.theta = theta.typed_data();
  p.loss = loss->typed_data();
  p.grad = grad->typed_data();
  p.widths.assign(widths.begin(), widths.end());
  p.batch = xd[1];
  p.num_params = td[1];
  p.y_size = yd[2];
  p.loss_kind = loss_kind;
  p.act_kind = act_kind;
  p.slope = slope;
  shared->num_members = xd[0];
  int64_t helpers = std::min<int64_t>(pool.num_threads(), shared->num_members - 1);
  for (int64_t t = 0; t < helpers; ++t) pool.Schedule([shared]() { work(shared.get()); });
  work(shared.get());
  std::unique_lock<std::mutex> lock(shared->mu);
  shared->cv.wait(lock, [&] { return shared->done.load() == shared->num_members; });
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(ToylabMlpValueAndGrad, ValueAndGrad,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Attr<ffi::Span<const int64_t>>("widths")
                                  .Attr<int32_t>("loss_kind")
                                  .Attr<int32_t>("act_kind")
                                  .Attr<float>("slope")
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>());
"""

_BUILD: dict[str, str | None] = {}


def _cpu_id() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor() or platform.machine()
    keep = [ln for ln in lines if ln.startswith(("model name", "flags"))][:2]
    return "\n".join(keep) or platform.machine()


def _compiler() -> str | None:
    for name in (os.environ.get("CXX"), "g++", "c++", "clang++"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def _build() -> str | None:
    """Compile and register the kernel once per process; the reason it is unavailable
    (``None`` when it is ready)."""
    if jax.default_backend() != "cpu":
        return (
            f"the fused kernel runs on CPU only; JAX's default backend is {jax.default_backend()!r}"
        )
    cxx = _compiler()
    if cxx is None:
        return "no C++ compiler found (set $CXX, or install g++ or clang++)"
    # -fno-trapping-math lets selects (relu) vectorise, -ffp-contract=fast fuses multiply-adds;
    # no fast-math (no reassociation; NaN and infinity propagate)
    flags = [
        "-O3",
        "-march=native",
        "-fno-trapping-math",
        "-ffp-contract=fast",
        "-std=c++17",
        "-shared",
        "-fPIC",
    ]
    version = subprocess.run([cxx, "--version"], capture_output=True, text=True).stdout
    key = hashlib.sha256(
        "\0".join([SOURCE, cxx, version, " ".join(flags), jax.__version__, _cpu_id()]).encode()
    ).hexdigest()[:16]
    from toylab._compile_cache import cache_dir

    base = cache_dir()
    folder = (base.parent if base is not None else Path(tempfile.gettempdir())) / "kernels"
    lib_path = folder / f"toylab_fused_mlp_{key}.so"
    if not lib_path.exists():
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=folder) as tmp:
                src = Path(tmp) / "fused_mlp.cc"
                src.write_text(SOURCE)
                out = Path(tmp) / lib_path.name
                cmd = [cxx, *flags, f"-I{jax.ffi.include_dir()}", str(src), "-o", str(out)]
                res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
                if res.returncode != 0:
                    return f"compiling the kernel failed: {res.stderr.strip()[-500:]}"
                os.replace(out, lib_path)
        except (OSError, subprocess.SubprocessError) as e:
            return f"compiling the kernel failed: {e}"
    try:
        lib = ctypes.cdll.LoadLibrary(str(lib_path))
        jax.ffi.register_ffi_target(
            TARGET, jax.ffi.pycapsule(lib.ToylabMlpValueAndGrad), platform="cpu"
        )
    except (OSError, AttributeError, ValueError) as e:
        return f"loading the kernel failed: {e}"
    return None


def unavailable() -> str | None:
    """Why the kernel cannot run in this process, or ``None`` (built and registered)."""
    if "reason" not in _BUILD:
        _BUILD["reason"] = _build()
    return _BUILD["reason"]


def unsupported(model: Any, loss: Any, classification: bool, params: Any) -> str | None:
    """Why the kernel does not cover this model and loss, or ``None``."""
    from toylab.models.mlp import MLP

    if not isinstance(model, MLP):
        return f"it covers MLPs, not {type(model).__name__}"
    if model.activation not in ACT_KINDS:
        return f"it covers {sorted(ACT_KINDS)} units, not {model.activation!r}"
    if not isinstance(loss, str) or (loss, classification) not in LOSS_KINDS:
        return f"it covers the losses 'cross_entropy' and 'mse', not {loss!r}"
    if any(a.dtype != jnp.float32 for a in jax.tree.leaves(params)):
        return "it covers float32 parameters"
    return None


def _layers(params: Any) -> list[tuple[Any, Any]]:
    layers = params["layers"]
    return [(layers[k]["kernel"][...], layers[k]["bias"][...]) for k in range(len(layers))]


def pack(params: Any) -> jax.Array:
    """Stacked MLP parameters to ``(M, P)``: per member ``[W_0, b_0, W_1, b_1, ...]``."""
    parts = []
    for w, b in _layers(params):
        parts += [w.reshape(w.shape[0], -1), b]
    return jnp.concatenate(parts, axis=1)


def unpack(theta: jax.Array, like: Any) -> Any:
    """The inverse of :func:`pack`, into the structure of ``like``."""
    leaves, treedef = jax.tree_util.tree_flatten_with_path(like)
    out: dict[tuple[int, str], jax.Array] = {}
    at = 0
    for k, (w, b) in enumerate(_layers(like)):
        nw = int(np.prod(w.shape[1:]))
        out[(k, "kernel")] = theta[:, at : at + nw].reshape(w.shape)
        at += nw
        out[(k, "bias")] = theta[:, at : at + b.shape[1]]
        at += b.shape[1]

    def pick(path: Any) -> Any:
        names: list[Any] = [getattr(p, "key", getattr(p, "name", None)) for p in path]
        return out[(int(names[1]), str(names[2]))]

    return jax.tree_util.tree_unflatten(treedef, [pick(p) for p, _ in leaves])


def value_and_grad(
    widths: tuple[int, ...], loss_kind: int, act_kind: int, slope: float,
    x: jax.Array, y: jax.Array, w: jax.Array, theta: jax.Array,
) -> tuple[jax.Array, jax.Array]:  # fmt: skip
    """``(loss (M,), grad (M, P))`` of ``sum_b w[m, b] ell(mlp(theta[m], x[m, b]), y[m, b])``."""
    num, size = theta.shape
    call = jax.ffi.ffi_call(
        TARGET,
        (jax.ShapeDtypeStruct((num,), jnp.float32), jax.ShapeDtypeStruct((num, size), jnp.float32)),
    )
    loss, grad = call(
        x.astype(jnp.float32), y.astype(jnp.float32), w.astype(jnp.float32), theta,
        widths=np.asarray(widths, np.int64), loss_kind=np.int32(loss_kind),
        act_kind=np.int32(act_kind), slope=np.float32(slope),
    )  # fmt: skip
    return loss, grad
