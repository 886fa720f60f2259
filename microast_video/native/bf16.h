// bfloat16 as raw uint16 bits, for the native kernels (up_dw.cpp, centre.cpp): the one place
// they are widened to float32 and rounded back.
#pragma once
#include <cstdint>
#include <cstring>

namespace microast {

inline float from_bf16(uint16_t v) {
  uint32_t u = uint32_t(v) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

inline uint16_t to_bf16(float f) {  // round to nearest even, as PyTorch does; NaN stays NaN; branch-free, so it vectorizes
  uint32_t u;
  std::memcpy(&u, &f, 4);
  uint32_t r = (u & 0x7fffffffu) > 0x7f800000u ? (u | 0x400000u) : u + 0x7fffu + ((u >> 16) & 1u);
  return uint16_t(r >> 16);
}

}  // namespace microast
