// The quarter-resolution convs under bf16: their input centred, rounded and padded in one
// pass, and their output's pointwise tail in one pass (built and loaded by
// microast_video/native/build.py, with up_dw.cpp and temporal.cpp).
//
// centred_conv (models/strips.py) takes each conv's input x, subtracts its per-channel mean
// mu, rounds to bf16 and convolves, adding bias + W·mu back in float32. In PyTorch ops, on a
// strip, that is a padded copy of x (a concatenation), a mean, a subtraction and a cast: four
// passes over float32 rows. Here: the mean in one read of the rows, then one pass writing
//   out[r, c, k] = bf16(x[refl(r - top), refl(c - left), k] - mu[k])
// where refl reflects at the block's edges (F.pad "reflect"; the caller pads rows only where
// the strip meets the frame's edge). mu is the mean of the block's rows (any constant
// centres exactly; the caller adds W·mu back), written to mu_out for the caller.
//
// Memory: x is NHWC rows (channels contiguous, then columns, rows row_stride apart), float32;
// out is NHWC contiguous, bfloat16 (raw uint16 bits), (rows + top + bottom) x (w + left + right).
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "bf16.h"

namespace {

using microast::from_bf16;
using microast::to_bf16;

inline int reflect(int i, int n) { return i < 0 ? -i : (i >= n ? 2 * (n - 1) - i : i); }

template <typename Fn>
void in_parallel(int n, int threads, Fn fn) {  // fn(t, n): part t of n
  n = std::max(1, std::min(threads, n));
#ifdef _OPENMP
#pragma omp parallel for num_threads(n) schedule(static, 1)
  for (int t = 0; t < n; ++t) fn(t, n);
#else
  std::vector<std::thread> pool;
  for (int t = 1; t < n; ++t) pool.emplace_back(fn, t, n);
  fn(0, n);
  for (auto& th : pool) th.join();
#endif
}

}  // namespace

// Returns 0 when done, 1 for arguments it cannot take (nothing written).
extern "C" int microast_centre_pad(const float* x, int64_t row_stride, int rows, int w, int channels, int top,
                                   int bottom, int left, int right, float* mu_out, uint16_t* out, int threads) {
  if (rows < 1 || w < 1 || channels < 1 || channels > 4096 || top < 0 || bottom < 0 || left < 0 || right < 0 ||
      top >= rows || bottom >= rows || left >= w || right >= w)
    return 1;
  std::vector<float> row_sums(size_t(rows) * channels, 0.0f);
  in_parallel(rows, threads, [&](int t, int n) {
    for (int r = int(int64_t(rows) * t / n); r < int(int64_t(rows) * (t + 1) / n); ++r) {
      const float* __restrict row = x + r * row_stride;
      float* __restrict acc = row_sums.data() + size_t(r) * channels;
      for (int c = 0; c < w; ++c)
        for (int k = 0; k < channels; ++k) acc[k] += row[size_t(c) * channels + k];
    }
  });
  for (int k = 0; k < channels; ++k) {  // rows in order, in float64: the same mean whatever the threads
    double s = 0.0;
    for (int r = 0; r < rows; ++r) s += row_sums[size_t(r) * channels + k];
    mu_out[k] = float(s / (double(rows) * w));
  }
  const int out_rows = rows + top + bottom, out_w = w + left + right;
  in_parallel(out_rows, threads, [&](int t, int n) {
    for (int r = int(int64_t(out_rows) * t / n); r < int(int64_t(out_rows) * (t + 1) / n); ++r) {
      const float* row = x + reflect(r - top, rows) * row_stride;
      uint16_t* dst = out + int64_t(r) * out_w * channels;
      for (int c = 0; c < out_w; ++c) {
        const float* src = row + size_t(reflect(c - left, w)) * channels;
        uint16_t* d = dst + size_t(c) * channels;
        for (int k = 0; k < channels; ++k) d[k] = to_bf16(src[k] - mu_out[k]);
      }
    }
  });
  return 0;
}

namespace {

// One row of the tail, its cases fixed at compile time (so the channel loop vectorizes).
template <bool Modulated, bool Residual, bool Relu>
void tail_row(const uint16_t* __restrict y, int w, int channels, const float* __restrict shift,
              const float* __restrict wt, const float* __restrict bt, const float* __restrict z,
              const float* __restrict res, float* __restrict out) {
  for (int c = 0; c < w; ++c) {
    const int64_t at = int64_t(c) * channels;
    for (int k = 0; k < channels; ++k) {
      float v = from_bf16(y[at + k]) + shift[k];
      if (Modulated) v = v * wt[k] + bt[k] * z[at + k];
      if (Residual) v = v + res[at + k];
      if (Relu) v = v > 0.0f ? v : 0.0f;
      out[at + k] = v;
    }
  }
}

using TailFn = void (*)(const uint16_t*, int, int, const float*, const float*, const float*, const float*,
                        const float*, float*);

template <bool Modulated, bool Residual>
TailFn pick_relu(int relu) {
  return relu ? tail_row<Modulated, Residual, true> : tail_row<Modulated, Residual, false>;
}

}  // namespace

// A residual block's pointwise tail after a centred bf16 conv (strip_blocks.Residual), in one pass:
//   t = float(y) + shift;  with wt: t = t * wt + bt * z;  with res: t = t + res;  relu: max(t, 0)
// per channel k (PyTorch's operations; the compiler may fuse a multiply and an add, so the
// last bit can differ). y is NHWC contiguous bfloat16 (raw bits), rows x w x channels; z and
// res are NHWC float32 rows, row strides apart; out is NHWC contiguous float32. Returns 0, or
// 1 for arguments it cannot take (nothing written).
extern "C" int microast_epilogue(const uint16_t* y, int rows, int w, int channels, const float* shift,
                                 const float* wt, const float* bt, const float* z, int64_t z_stride,
                                 const float* res, int64_t res_stride, int relu, float* out, int threads) {
  if (rows < 1 || w < 1 || channels < 1 || (wt == nullptr) != (bt == nullptr) || (bt != nullptr && z == nullptr))
    return 1;
  const bool modulated = wt != nullptr, residual = res != nullptr;
  TailFn fn = modulated ? (residual ? pick_relu<true, true>(relu) : pick_relu<true, false>(relu))
                        : (residual ? pick_relu<false, true>(relu) : pick_relu<false, false>(relu));
  const int64_t row_len = int64_t(w) * channels;
  in_parallel(rows, threads, [&](int t, int n) {
    for (int r = int(int64_t(rows) * t / n); r < int(int64_t(rows) * (t + 1) / n); ++r)
      fn(y + r * row_len, w, channels, shift, wt, bt, modulated ? z + r * z_stride : nullptr,
         residual ? res + r * res_stride : nullptr, out + r * row_len);
  });
  return 0;
}

// FeatMod's per-channel statistics of a whole map (strip_blocks.strip_mean_std), in two reads:
// sums[k] = sum of x, then (with mean given) sums[k] = sum of (x - mean[k])^2; each row summed
// in float32, the rows in order in float64 (so the sums do not depend on the threads). x is NHWC rows (float32), row_stride apart. Returns 0, or 1.
extern "C" int microast_channel_sums(const float* x, int64_t row_stride, int rows, int w, int channels,
                                     const float* mean, double* sums, int threads) {
  if (rows < 1 || w < 1 || channels < 1 || channels > 4096) return 1;
  std::vector<float> row_sums(size_t(rows) * channels, 0.0f);
  in_parallel(rows, threads, [&](int t, int n) {
    for (int r = int(int64_t(rows) * t / n); r < int(int64_t(rows) * (t + 1) / n); ++r) {
      const float* __restrict row = x + r * row_stride;
      float* __restrict acc = row_sums.data() + size_t(r) * channels;
      if (mean == nullptr) {
        for (int c = 0; c < w; ++c)
          for (int k = 0; k < channels; ++k) acc[k] += row[size_t(c) * channels + k];
      } else {
        for (int c = 0; c < w; ++c)
          for (int k = 0; k < channels; ++k) {
            const float d = row[size_t(c) * channels + k] - mean[k];
            acc[k] += d * d;
          }
      }
    }
  });
  for (int k = 0; k < channels; ++k) {  // rows in order, in float64: the same sums whatever the threads
    double s = 0.0;
    for (int r = 0; r < rows; ++r) s += row_sums[size_t(r) * channels + k];
    sums[k] = s;
  }
  return 0;
}

// FeatMod with the statistics taken (strip_blocks.Modulate), one pass:
//   v = (x - m) / s * std + mean;  alpha < 1: v = v * alpha + (1 - alpha) * x
// x is NHWC rows (float32), row_stride apart; out NHWC contiguous float32. Returns 0, or 1.
extern "C" int microast_modulate(const float* x, int64_t row_stride, int rows, int w, int channels, const float* m,
                                 const float* s, const float* mean, const float* std_, float alpha, float* out,
                                 int threads) {
  if (rows < 1 || w < 1 || channels < 1) return 1;
  const int64_t row_len = int64_t(w) * channels;
  const bool blend = alpha != 1.0f;
  const float keep = 1.0f - alpha;
  in_parallel(rows, threads, [&](int t, int n) {
    for (int r = int(int64_t(rows) * t / n); r < int(int64_t(rows) * (t + 1) / n); ++r) {
      const float* __restrict row = x + r * row_stride;
      float* __restrict o = out + r * row_len;
      for (int c = 0; c < w; ++c) {
        const int64_t at = int64_t(c) * channels;
        if (blend) {
          for (int k = 0; k < channels; ++k) {
            const float v = (row[at + k] - m[k]) / s[k] * std_[k] + mean[k];
            o[at + k] = v * alpha + keep * row[at + k];
          }
        } else {
          for (int k = 0; k < channels; ++k) o[at + k] = (row[at + k] - m[k]) / s[k] * std_[k] + mean[k];
        }
      }
    }
  });
  return 0;
}
