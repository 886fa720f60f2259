// microast-video's native kernels for the temporal stage's full-resolution passes (built and
// loaded by microast_video/native/build.py with up_dw.cpp; called from microast_video/_temporal.py).
//
// Both take small maps that are already upsampled horizontally (fh rows of the full width w)
// and upsample them vertically one row at a time, as cv2.resize does (INTER_LINEAR: source
// row (r + 0.5) * fh / h - 0.5, clamped at the edges), so no full-size map exists.
//
// microast_warp:    out[r, x] = prev sampled bilinearly at coords[r, x] (replicated borders),
//                   prev and out uint16 (h, w, ch); coords (fh, w, 2) float32 (x, y).
// microast_compose: out = ac * c * c_scale + aw * warped * w_scale + k per sample, then
//                   state = round(out * 65535) as uint16, samples = round(out * top) as uint8 or
//                   uint16 (both clamped); ac, aw (fh, w), k (fh, w, ch) float32.
//
// Each call runs on the calling thread only: the temporal stage runs beside the network,
// and a second thread here would only take a core from the network's own threads.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>
#ifdef __AVX2__
#include <immintrin.h>
#endif

namespace {

struct Rows {  // the two source rows of a small map and the weight of the second
  int i0, i1;
  float t;
};

inline Rows rows_for(int r, int h, int fh) {
  double src = std::max((r + 0.5) * fh / h - 0.5, 0.0);
  int i0 = std::min(static_cast<int>(std::floor(src)), fh - 1);
  return {i0, std::min(i0 + 1, fh - 1), static_cast<float>(src - i0)};
}

// One row of a small map (n floats per small row), upsampled vertically, times scale.
inline void lerp_row(const float* map, int64_t n, Rows r, float scale, float* out) {
  const float* a = map + r.i0 * n;
  const float* b = map + r.i1 * n;
  const float s = (1.0f - r.t) * scale, t = r.t * scale;
  for (int64_t i = 0; i < n; ++i) out[i] = a[i] * s + b[i] * t;
}

inline float clamp_to(float v, float lo, float hi) {  // NaN -> lo; ternaries vectorize, std::clamp's references do not
  v = v > lo ? v : lo;
  return v < hi ? v : hi;
}

#ifdef __AVX2__
// The gathers of warp_row for 3 channels, 8 pixels at a time: each 32-bit gather reads two
// neighbouring uint16 samples (channels 0-1, then 2 and the next pixel's 0). Returns the
// first pixel left to the scalar loop (a group that would read past the buffer's end).
inline int warp8_rgb(const uint16_t* prev, int64_t total, int w, const int32_t* at, const int32_t* dx,
                     const int32_t* dy, const float* ax, const float* ay, uint16_t* out) {
  const int* base = reinterpret_cast<const int*>(prev);
  const __m256i low = _mm256_set1_epi32(0xffff), two = _mm256_set1_epi32(2);
  const __m256 half = _mm256_set1_ps(0.5f);
  alignas(32) int32_t lanes[3][8];
  int x = 0;
  for (; x + 8 <= w; x += 8) {
    __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(at + x));
    __m256i b = _mm256_add_epi32(a, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(dx + x)));
    __m256i c = _mm256_add_epi32(a, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(dy + x)));
    __m256i d = _mm256_add_epi32(b, _mm256_sub_epi32(c, a));
    alignas(32) int32_t last[8];
    _mm256_store_si256(reinterpret_cast<__m256i*>(last), d);
    bool inside = true;
    for (int i = 0; i < 8; ++i) inside &= last[i] + 4 <= total;  // the second gather reads sample + 3
    if (!inside) break;
    __m256 fx = _mm256_loadu_ps(ax + x), fy = _mm256_loadu_ps(ay + x);
    __m256i corner[4] = {a, b, c, d};
    __m256 v[4][3];
    for (int k = 0; k < 4; ++k) {
      __m256i g01 = _mm256_i32gather_epi32(base, corner[k], 2);
      __m256i g2 = _mm256_i32gather_epi32(base, _mm256_add_epi32(corner[k], two), 2);
      v[k][0] = _mm256_cvtepi32_ps(_mm256_and_si256(g01, low));
      v[k][1] = _mm256_cvtepi32_ps(_mm256_srli_epi32(g01, 16));
      v[k][2] = _mm256_cvtepi32_ps(_mm256_and_si256(g2, low));
    }
    for (int j = 0; j < 3; ++j) {
      __m256 top = _mm256_fmadd_ps(fx, _mm256_sub_ps(v[1][j], v[0][j]), v[0][j]);
      __m256 bottom = _mm256_fmadd_ps(fx, _mm256_sub_ps(v[3][j], v[2][j]), v[2][j]);
      __m256 s = _mm256_add_ps(_mm256_fmadd_ps(fy, _mm256_sub_ps(bottom, top), top), half);
      _mm256_store_si256(reinterpret_cast<__m256i*>(lanes[j]), _mm256_cvttps_epi32(s));
    }
    uint16_t* o = out + x * 3;
    for (int i = 0; i < 8; ++i)
      o[3 * i] = uint16_t(lanes[0][i]), o[3 * i + 1] = uint16_t(lanes[1][i]), o[3 * i + 2] = uint16_t(lanes[2][i]);
  }
  return x;
}
#endif

// One output row: where each sample comes from (a vectorizable pass), then the gathers.
template <int CH>
void warp_row(const uint16_t* prev, int h, int w, const float* xy, int32_t* at, int32_t* dx, int32_t* dy, float* ax,
              float* ay, uint16_t* out) {
  const int32_t stride = w * CH;
  const float right = static_cast<float>(w - 1), bottom = static_cast<float>(h - 1);
  for (int x = 0; x < w; ++x) {  // floats only (vectorizes with -fno-trapping-math)
    // coordinates far outside (or NaN) land just outside: the border sample is replicated
    float fx = clamp_to(xy[2 * x], -1.0f, static_cast<float>(w)), fy = clamp_to(xy[2 * x + 1], -1.0f, static_cast<float>(h));
    float x0 = std::floor(fx), y0 = std::floor(fy);
    ax[x] = fx - x0, ay[x] = fy - y0;
    int32_t xa = static_cast<int32_t>(clamp_to(x0, 0.0f, right)), xb = static_cast<int32_t>(clamp_to(x0 + 1.0f, 0.0f, right));
    int32_t ya = static_cast<int32_t>(clamp_to(y0, 0.0f, bottom)), yb = static_cast<int32_t>(clamp_to(y0 + 1.0f, 0.0f, bottom));
    at[x] = ya * stride + xa * CH;
    dx[x] = (xb - xa) * CH;
    dy[x] = (yb - ya) * stride;
  }
  int x = 0;
#ifdef __AVX2__
  if (CH == 3) x = warp8_rgb(prev, static_cast<int64_t>(h) * stride, w, at, dx, dy, ax, ay, out);
#endif
  for (; x < w; ++x) {
    const uint16_t* p = prev + at[x];
    const uint16_t* q = p + dy[x];
    const int32_t d = dx[x];
    for (int k = 0; k < CH; ++k) {
      float top = p[k] + ax[x] * (static_cast<float>(p[d + k]) - p[k]);
      float bottom = q[k] + ax[x] * (static_cast<float>(q[d + k]) - q[k]);
      out[x * CH + k] = static_cast<uint16_t>(top + ay[x] * (bottom - top) + 0.5f);
    }
  }
}

template <typename T>
inline T quantize(float v, float top) {
  float q = v * top + 0.5f;
  q = q > 0.0f ? q : 0.0f;  // NaN -> 0
  return static_cast<T>(q < top ? q : top);
}

template <typename TC, typename TS>
void compose(const TC* c, const uint16_t* warped, int h, int w, int ch, const float* ac, const float* aw,
             const float* k, int fh, float c_scale, float w_scale, uint16_t* state, TS* samples, float top, int r0,
             int r1) {
  const int64_t n = static_cast<int64_t>(w) * ch;
  std::vector<float> rac(w), raw(w), wac(n), waw(n), rk(n);
  for (int r = r0; r < r1; ++r) {
    Rows rows = rows_for(r, h, fh);
    lerp_row(ac, w, rows, c_scale, rac.data());
    lerp_row(aw, w, rows, w_scale, raw.data());
    lerp_row(k, n, rows, 1.0f, rk.data());
    for (int x = 0; x < w; ++x)
      for (int j = 0; j < ch; ++j) wac[x * ch + j] = rac[x], waw[x * ch + j] = raw[x];
    const TC* cr = c + r * n;
    const uint16_t* wr = warped + r * n;
    uint16_t* sr = state + r * n;
    TS* out = samples + r * n;
    for (int64_t i = 0; i < n; ++i) {
      float v = wac[i] * static_cast<float>(cr[i]) + waw[i] * static_cast<float>(wr[i]) + rk[i];
      sr[i] = quantize<uint16_t>(v, 65535.0f);
      out[i] = quantize<TS>(v, top);
    }
  }
}

}  // namespace

extern "C" {

// Rows [r0, r1) of prev (h, w, ch uint16) warped to coords (fh, w, 2); returns 0, or 1 for a bad ch.
int microast_warp(const uint16_t* prev, int h, int w, int ch, const float* coords, int fh, uint16_t* out, int r0,
                  int r1) {
  if (ch < 1 || ch > 4 || h < 1 || w < 1 || fh < 1) return 1;
  if (static_cast<int64_t>(h) * w * ch >= (int64_t{1} << 31)) return 1;  // offsets are int32
  std::vector<float> xy(static_cast<size_t>(w) * 2), ax(w), ay(w);
  std::vector<int32_t> at(w), dx(w), dy(w);
  for (int r = r0; r < r1; ++r) {
    lerp_row(coords, static_cast<int64_t>(w) * 2, rows_for(r, h, fh), 1.0f, xy.data());
    uint16_t* o = out + static_cast<int64_t>(r) * w * ch;
    switch (ch) {
      case 1: warp_row<1>(prev, h, w, xy.data(), at.data(), dx.data(), dy.data(), ax.data(), ay.data(), o); break;
      case 2: warp_row<2>(prev, h, w, xy.data(), at.data(), dx.data(), dy.data(), ax.data(), ay.data(), o); break;
      case 3: warp_row<3>(prev, h, w, xy.data(), at.data(), dx.data(), dy.data(), ax.data(), ay.data(), o); break;
      default: warp_row<4>(prev, h, w, xy.data(), at.data(), dx.data(), dy.data(), ax.data(), ay.data(), o); break;
    }
  }
  return 0;
}

// Rows [r0, r1) of the blend (see the top of this file). c is uint8 (c_u16 = 0) or uint16;
// samples likewise (s_u16). Returns 0, or 1 for bad sizes.
int microast_compose(const void* c, int c_u16, const uint16_t* warped, int h, int w, int ch, const float* ac,
                     const float* aw, const float* k, int fh, float c_scale, float w_scale, uint16_t* state,
                     void* samples, int s_u16, float top, int r0, int r1) {
  if (ch < 1 || h < 1 || w < 1 || fh < 1) return 1;
  if (c_u16 && s_u16)
    compose(static_cast<const uint16_t*>(c), warped, h, w, ch, ac, aw, k, fh, c_scale, w_scale, state,
            static_cast<uint16_t*>(samples), top, r0, r1);
  else if (!c_u16 && !s_u16)
    compose(static_cast<const uint8_t*>(c), warped, h, w, ch, ac, aw, k, fh, c_scale, w_scale, state,
            static_cast<uint8_t*>(samples), top, r0, r1);
  else
    return 1;
  return 0;
}

}  // extern "C"
