// microast-video's native colour conversions (built and loaded by microast_video/native/build.py
// with the other kernels): the decoder's 4:2:0 -> RGB (called from microast_video/_decode.py)
// and the encoder's RGB -> 4:2:0 (called from microast_video/_encode.py).
//
// microast_yuv420_to_rgb8: 8-bit 4:2:0 planes -> packed RGB uint8, in one pass per row, the same
// arithmetic as microast_video/_transport.py's YUV420Transport.to_float (then clamped to [0, 1],
// times 255, rounded to nearest even):
//   chroma siting MPEG-2 / H.264: vertically between luma rows (bilinear, align_corners=False,
//   edges clamped), horizontally co-sited with even columns (odd columns: the mean of the two
//   neighbours, the last one replicated);
//   y = (Y - y0) / yr, cb = (U - c0) / cr, cr = (V - c0) / cr; rgb = m (3x3, row-major) (y, cb, cr).
// FFmpeg's accurate conversion (bicubic chroma, full chroma interpolation, accurate rounding)
// took ~23 ms a 1080p frame on one core; this takes a few.
//
// microast_rgb8_to_yuv420: packed RGB uint8 -> 8-bit 4:2:0 planes, the arithmetic of
// YUV420Transport.from_float on rgb / 255 (what the CUDA path sends to the encoder):
//   (y, cb, cr) = m (3x3, row-major) (r, g, b); Y = y * yr + y0;
//   chroma [1, 2, 1] / 4 centred on even columns (edges replicated), then the mean of each row
//   pair; U = cb * cr + c0, V likewise; every sample rounded half to even, clamped to [0, 255].
// FFmpeg's own conversion of the piped RGB (swscale, accurate, bicubic chroma) took ~12 ms a
// 1080p frame in the encoder's process, and the pipe carried twice the bytes.
//
// Both run on the calling thread only (the decoder's, the writer's), beside the network's threads.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace {

inline uint8_t to_code(float v) {  // round half to even, clamp to [0, 255] (NaN -> 0)
  v = std::nearbyint(v);
  v = v > 0.0f ? v : 0.0f;
  return static_cast<uint8_t>(v < 255.0f ? v : 255.0f);
}

// One RGB row -> its luma samples, and its float cb, cr at full width.
void ycc_row(const uint8_t* p, int w, const float* m, float y0, float yr, uint8_t* y, float* cb, float* cr) {
  for (int x = 0; x < w; ++x) {
    const float r = static_cast<float>(p[3 * x]) / 255.0f, g = static_cast<float>(p[3 * x + 1]) / 255.0f,
                b = static_cast<float>(p[3 * x + 2]) / 255.0f;
    y[x] = to_code((m[0] * r + m[1] * g + m[2] * b) * yr + y0);
    cb[x] = m[3] * r + m[4] * g + m[5] * b;
    cr[x] = m[6] * r + m[7] * g + m[8] * b;
  }
}

// Two rows of one chroma component at full width -> its 4:2:0 samples (wc of them).
void chroma_down(const float* a, const float* b, int w, float c0, float cr, uint8_t* out) {
  for (int q = 0; q < w / 2; ++q) {
    const int x = 2 * q, l = x > 0 ? x - 1 : 0, r = x + 1 < w ? x + 1 : w - 1;
    const float top = (a[l] + 2.0f * a[x] + a[r]) * 0.25f, bottom = (b[l] + 2.0f * b[x] + b[r]) * 0.25f;
    out[q] = to_code((top + bottom) * 0.5f * cr + c0);
  }
}

inline uint8_t to_u8(float v) {  // clamp to [0, 1] (NaN -> 0), x255, round half to even
  return to_code(v * 255.0f);       // the same: 0 and 255 are integers, so clamping commutes with rounding
}

// One chroma row at full width: vertical lerp of rows i0, i1 (weight t of i1), then the
// horizontal co-sited upsampling; returns (sample - c0) / cr.
void chroma_row(const uint8_t* plane, int64_t stride, int i0, int i1, float t, int wc, float c0, float inv_cr,
                float* half, float* out) {
  const uint8_t* a = plane + i0 * stride;
  const uint8_t* b = plane + i1 * stride;
  for (int q = 0; q < wc; ++q) half[q] = static_cast<float>(a[q]) * (1.0f - t) + static_cast<float>(b[q]) * t;
  for (int q = 0; q < wc; ++q) {
    const float next = half[q + 1 < wc ? q + 1 : wc - 1];
    out[2 * q] = (half[q] - c0) * inv_cr;
    out[2 * q + 1] = ((half[q] + next) * 0.5f - c0) * inv_cr;
  }
}

}  // namespace

extern "C" {

// Rows [r0, r1) of the RGB picture (h, w, 3) from planes y (h, w), u and v (h/2, w/2) with
// their own row strides. h and w must be even. Returns 0, or 1 for bad sizes.
int microast_yuv420_to_rgb8(const uint8_t* y, int64_t y_stride, const uint8_t* u, const uint8_t* v,
                            int64_t c_stride, int h, int w, const float* m, float y0, float yr, float c0, float cr,
                            uint8_t* out, int r0, int r1) {
  if (h < 2 || w < 2 || h % 2 || w % 2 || r0 < 0 || r1 > h) return 1;
  const int hc = h / 2, wc = w / 2;
  const float inv_yr = 1.0f / yr, inv_cr = 1.0f / cr;
  std::vector<float> half(wc), cb(w), cr_row(w);
  for (int r = r0; r < r1; ++r) {
    // torch's bilinear x2, align_corners=False: source row (r + 0.5) / 2 - 0.5, clamped at 0
    const float src = std::fmax((r + 0.5f) * 0.5f - 0.5f, 0.0f);
    const int i0 = std::min(static_cast<int>(src), hc - 1), i1 = std::min(i0 + 1, hc - 1);
    const float t = src - static_cast<float>(i0);
    chroma_row(u, c_stride, i0, i1, t, wc, c0, inv_cr, half.data(), cb.data());
    chroma_row(v, c_stride, i0, i1, t, wc, c0, inv_cr, half.data(), cr_row.data());
    const uint8_t* yr_row = y + r * y_stride;
    uint8_t* o = out + static_cast<int64_t>(r) * w * 3;
    for (int x = 0; x < w; ++x) {
      const float l = (static_cast<float>(yr_row[x]) - y0) * inv_yr, b = cb[x], c = cr_row[x];
      o[3 * x] = to_u8(m[0] * l + m[1] * b + m[2] * c);
      o[3 * x + 1] = to_u8(m[3] * l + m[4] * b + m[5] * c);
      o[3 * x + 2] = to_u8(m[6] * l + m[7] * b + m[8] * c);
    }
  }
  return 0;
}

// The 4:2:0 planes y (h, w), u and v (h/2, w/2), contiguous, of the RGB picture (h, w, 3) whose
// rows are row_stride bytes apart. h and w must be even. Returns 0, or 1 for bad sizes.
int microast_rgb8_to_yuv420(const uint8_t* rgb, int64_t row_stride, int h, int w, const float* m, float y0,
                            float yr, float c0, float cr, uint8_t* y, uint8_t* u, uint8_t* v) {
  if (h < 2 || w < 2 || h % 2 || w % 2) return 1;
  const int wc = w / 2;
  std::vector<float> cb0(w), cb1(w), cr0(w), cr1(w);
  for (int q = 0; q < h / 2; ++q) {
    const int64_t r = 2 * q;
    ycc_row(rgb + r * row_stride, w, m, y0, yr, y + r * w, cb0.data(), cr0.data());
    ycc_row(rgb + (r + 1) * row_stride, w, m, y0, yr, y + (r + 1) * w, cb1.data(), cr1.data());
    chroma_down(cb0.data(), cb1.data(), w, c0, cr, u + static_cast<int64_t>(q) * wc);
    chroma_down(cr0.data(), cr1.data(), w, c0, cr, v + static_cast<int64_t>(q) * wc);
  }
  return 0;
}

}  // extern "C"
