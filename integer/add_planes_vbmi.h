// The residual add and the requant after it on packed bytes, its table lookups by vpermt2b (AVX512-VBMI).
//
// evaluate_output runs a tabulated add_requant as one lookup per branch and element (requant_table.h);
// by vpgatherdd that is 16 loads per 16 elements, and the gathers were most of MobileNetV2's adds. Where
// every branch's table fits int16 (BytePlanes16) and the sum of the largest entries does too, a table
// row is 8 registers (256 low bytes, 256 high bytes), and 64 elements of a branch cost one vpermq, four
// vpermt2b, two blends and two unpacks, with no load but the input's. The two unpacks leave the int16
// terms in an order of 8-byte blocks; the vpermq before them swaps blocks 1 <-> 2 and 5 <-> 6 of the
// input so that the four 16-lane groups they widen into come out as elements 0-15, 16-31, 32-47, 48-63.
//
// The int16 sums are exact (|sum| <= the sum of the branches' largest entries <= 32767), clamped to the
// add's type, then requantized by the 16-lane route in registers (requant_high_mul16_step).
#pragma once

#include <cstddef>
#include <cstdint>

#include "integer/requant16_avx512.h"
#include "integer/requant_stage.h"

namespace qv::integer {

// One (n, c) plane of n elements: branch b's stored bytes src[b] looked up in its channel's planes
// planes[b] (BytePlanes16::channel), summed in int16, clamped to [lo, hi] (the add's type, clipped to
// int16), requantized by p (with add, into [rq_lo, rq_hi]) into dst. track: widen r by the sums + add
// and the outputs, as requant_high_mul16_step does; false when the plan proved both in their types.
// 1 <= branches <= 4.
void add_planes16_then_high_mul16(const uint8_t* const* planes, const uint8_t* const* src, size_t branches, int64_t n, int16_t lo,
                                  int16_t hi, const FusedRequant::HighMulParams& p, int32_t add, int32_t rq_lo, int32_t rq_hi,
                                  uint8_t* dst, Ranges32& r, bool track);

}  // namespace qv::integer
