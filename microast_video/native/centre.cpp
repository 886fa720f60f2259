// The quarter-resolution convs' input under bf16, in one pass: centre, round, pad
// (built and loaded by microast_video/_native.py, with up_dw.cpp and temporal.cpp).
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

namespace {

inline uint16_t round_bf16(float f) {  // round to nearest even; NaN stays NaN; branch-free, so it vectorizes
  uint32_t u;
  std::memcpy(&u, &f, 4);
  uint32_t r = (u & 0x7fffffffu) > 0x7f800000u ? (u | 0x400000u) : u + 0x7fffu + ((u >> 16) & 1u);
  return uint16_t(r >> 16);
}

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
  const int parts = std::max(1, std::min(threads, rows));
  std::vector<double> sums(size_t(parts) * channels, 0.0);
  in_parallel(rows, threads, [&](int t, int n) {
    std::vector<float> acc(channels, 0.0f);
    double* total = sums.data() + size_t(t) * channels;
    for (int r = int(int64_t(rows) * t / n); r < int(int64_t(rows) * (t + 1) / n); ++r) {
      const float* row = x + r * row_stride;
      std::fill(acc.begin(), acc.end(), 0.0f);
      for (int c = 0; c < w; ++c)
        for (int k = 0; k < channels; ++k) acc[k] += row[size_t(c) * channels + k];
      for (int k = 0; k < channels; ++k) total[k] += acc[k];  // a row's sum in float32, rows in float64
    }
  });
  for (int k = 0; k < channels; ++k) {
    double s = 0.0;
    for (int t = 0; t < parts; ++t) s += sums[size_t(t) * channels + k];
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
        for (int k = 0; k < channels; ++k) d[k] = round_bf16(src[k] - mu_out[k]);
      }
    }
  });
  return 0;
}
