// microast-video's one native kernel: the decoder's "bilinear x2 upsampling, then a grouped
// 3x3 conv" in one pass, on the CPU (built and loaded by microast_video/native/build.py).
//
// out[r, c, g] = relu(bias[g] + sum over k < per, dy, dx < 3 of
//                     wt[g, k, dy, dx] * up[channel(g, k), refl(r + dy - 1), refl(c + dx - 1)])
// where up is x upsampled x2 (bilinear, align_corners=False: PyTorch's F.interpolate, source
// rows and columns clamped at the edges), refl is reflection padding by 1 (F.pad "reflect"),
// and channel(g, k) is g * per + k (a grouped conv's own order) or k * G + g ("blocked").
//
// Memory: x and out are NHWC rows (channels contiguous, then columns, rows row_stride apart),
// float32 or bfloat16 (raw uint16 bits). Rows [o0, o1) of the output are computed from the
// input rows [a, a + n) that the caller holds (h is the whole map's height, for the edges).
// The upsampled rows exist three at a time, in float32, per thread; nothing is allocated at
// full size. Accumulation is float32; a bf16 output is rounded to nearest even.
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

inline float widen(float v) { return v; }
inline float widen(uint16_t v) { return from_bf16(v); }
inline void put(float* o, float v) { *o = v; }
inline void put(uint16_t* o, float v) { *o = to_bf16(v); }

struct Job {
  const void* x;
  int64_t row_stride;  // elements between input rows
  int a, h, w;         // first input row held, the map's height and width (low resolution)
  const float* wt;     // [3][3][per][G], float32
  const float* bias;   // [G], float32
  void* out;
  int64_t out_row_stride;
  int o0, relu;
};

// Upsampled row rr (0 <= rr < 2h) of every channel into u, as [PER][2w + 2][G] float32 with
// the reflected columns at 0 and 2w + 1; v is scratch of [PER][w][G].
template <typename TI, int G, int PER, bool BLOCKED>
void up_row(const Job& j, int rr, float* v, float* u) {
  constexpr int C = G * PER;
  const int i = rr >> 1, w = j.w, w2 = 2 * j.w + 2;
  int lo, hi;
  float wl, wh;
  if (rr & 1) {
    lo = i, hi = std::min(i + 1, j.h - 1), wl = 0.75f, wh = 0.25f;
  } else {
    lo = std::max(i - 1, 0), hi = i, wl = 0.25f, wh = 0.75f;
  }
  const TI* xl = static_cast<const TI*>(j.x) + int64_t(lo - j.a) * j.row_stride;
  const TI* xh = static_cast<const TI*>(j.x) + int64_t(hi - j.a) * j.row_stride;
  for (int c = 0; c < w; ++c)
    for (int k = 0; k < PER; ++k) {
      float* dst = v + (int64_t(k) * w + c) * G;
      for (int g = 0; g < G; ++g) {
        const int64_t ch = int64_t(c) * C + (BLOCKED ? k * G + g : g * PER + k);
        dst[g] = wl * widen(xl[ch]) + wh * widen(xh[ch]);
      }
    }
  for (int k = 0; k < PER; ++k) {
    const float* vk = v + int64_t(k) * w * G;
    float* base = u + int64_t(k) * w2 * G;
    for (int c = 0; c < w; ++c) {
      const float* l = vk + int64_t(c > 0 ? c - 1 : 0) * G;
      const float* m = vk + int64_t(c) * G;
      const float* r = vk + int64_t(c + 1 < w ? c + 1 : w - 1) * G;
      float* even = base + int64_t(1 + 2 * c) * G;
      float* odd = even + G;
      for (int g = 0; g < G; ++g) {
        even[g] = 0.25f * l[g] + 0.75f * m[g];
        odd[g] = 0.75f * m[g] + 0.25f * r[g];
      }
    }
    std::memcpy(base, base + 2 * G, sizeof(float) * G);                                // column -1 = column 1
    std::memcpy(base + int64_t(w2 - 1) * G, base + int64_t(w2 - 3) * G, sizeof(float) * G);  // 2w = 2w - 2
  }
}

// Output row r from the three upsampled rows it reads (rows[dy] = upsampled row refl(r + dy - 1)).
template <typename TO, int G, int PER>
void conv_row(const Job& j, const float* const rows[3], int r) {
  const int w2 = 2 * j.w + 2;
  float wt[9 * PER * G], bias[G];
  std::memcpy(wt, j.wt, sizeof(wt));
  std::memcpy(bias, j.bias, sizeof(bias));
  TO* out = static_cast<TO*>(j.out) + int64_t(r - j.o0) * j.out_row_stride;
  for (int col = 0; col < 2 * j.w; ++col) {
    float acc[G];
    for (int g = 0; g < G; ++g) acc[g] = bias[g];
#pragma GCC unroll 3
    for (int dy = 0; dy < 3; ++dy)
#pragma GCC unroll 4
      for (int k = 0; k < PER; ++k)
#pragma GCC unroll 3
        for (int dx = 0; dx < 3; ++dx) {
          const float* src = rows[dy] + (int64_t(k) * w2 + col + dx) * G;
          const float* tap = wt + ((dy * 3 + dx) * PER + k) * G;
#pragma GCC unroll 64
          for (int g = 0; g < G; ++g) acc[g] += tap[g] * src[g];
        }
    if (j.relu)
      for (int g = 0; g < G; ++g) acc[g] = acc[g] > 0.0f ? acc[g] : 0.0f;
    TO* o = out + int64_t(col) * G;
    for (int g = 0; g < G; ++g) put(o + g, acc[g]);
  }
}

inline int reflect(int i, int n) { return i < 0 ? -i : (i >= n ? 2 * (n - 1) - i : i); }

template <typename TI, typename TO, int G, int PER, bool BLOCKED>
void run_rows(const Job& j, int r0, int r1) {
  const int64_t usize = int64_t(PER) * (2 * j.w + 2) * G;
  std::vector<float> v(int64_t(j.w) * G * PER), ring(3 * usize);
  int keys[3] = {-1, -1, -1};  // which upsampled row each ring slot holds
  for (int r = r0; r < r1; ++r) {
    const float* rows[3];
    for (int dy = 0; dy < 3; ++dy) {
      const int rr = reflect(r + dy - 1, 2 * j.h), slot = rr % 3;
      if (keys[slot] != rr) {
        up_row<TI, G, PER, BLOCKED>(j, rr, v.data(), ring.data() + slot * usize);
        keys[slot] = rr;
      }
      rows[dy] = ring.data() + slot * usize;
    }
    conv_row<TO, G, PER>(j, rows, r);
  }
}

using RowFn = void (*)(const Job&, int, int);

template <int G, int PER>
RowFn pick_types(int in_bf16, int out_bf16, int blocked) {
  if (in_bf16) {
    if (out_bf16) return blocked ? run_rows<uint16_t, uint16_t, G, PER, true> : run_rows<uint16_t, uint16_t, G, PER, false>;
    return blocked ? run_rows<uint16_t, float, G, PER, true> : run_rows<uint16_t, float, G, PER, false>;
  }
  if (out_bf16) return blocked ? run_rows<float, uint16_t, G, PER, true> : run_rows<float, uint16_t, G, PER, false>;
  return blocked ? run_rows<float, float, G, PER, true> : run_rows<float, float, G, PER, false>;
}

}  // namespace

// Returns 0 when done, 1 for a shape it is not built for (nothing written; see native/model.py SHAPES).
extern "C" int microast_up_dw(const void* x, int in_bf16, int64_t row_stride, int a, int h, int w, int groups,
                              int per, int blocked, const float* wt, const float* bias, void* out, int out_bf16,
                              int64_t out_row_stride, int o0, int o1, int relu, int threads) {
  RowFn fn = nullptr;
  if (groups == 32 && per == 2) fn = pick_types<32, 2>(in_bf16, out_bf16, blocked);
  if (groups == 16 && per == 2) fn = pick_types<16, 2>(in_bf16, out_bf16, blocked);
  if (fn == nullptr || o1 <= o0 || w < 1 || h < 1) return 1;
  Job j{x, row_stride, a, h, w, wt, bias, out, out_row_stride, o0, relu};
  const int n = std::max(1, std::min(threads, o1 - o0));
  auto chunk = [&](int t) { fn(j, int(o0 + int64_t(o1 - o0) * t / n), int(o0 + int64_t(o1 - o0) * (t + 1) / n)); };
#ifdef _OPENMP
  // Built with -fopenmp and loaded after torch, this is torch's own OpenMP runtime (the same
  // libgomp.so.1): its idle workers run these rows, instead of spinning beside new threads.
#pragma omp parallel for num_threads(n) schedule(static, 1)
  for (int t = 0; t < n; ++t) chunk(t);
#else
  std::vector<std::thread> pool;
  for (int t = 1; t < n; ++t) pool.emplace_back(chunk, t);
  chunk(0);
  for (auto& th : pool) th.join();
#endif
  return 0;
}
