// Depthwise straight from packed 8-bit activations (evaluate_output), AVX-512 VNNI + VBMI.
//
// The int16 kernel (depthwise.cc) first widens every input plane into int16 phase planes: on
// MobileNetV2 that copy took as long as the multiply-adds. This kernel reads the bytes where they are.
// For 16 outputs of a row and one kernel row ky it makes one masked 64-byte load of the input row
// (lanes outside the row take the pad byte, so there is no padded copy), and one vpermb builds in
// int32 lane i the four bytes at s*i + 4g .. s*i + 4g + 3 (taps 4g..4g+3 of the row, s = stride_w);
// one vpdpbusd multiplies them by the four weights and adds. A 3x3 kernel costs 3 loads, 3 vpermb and
// 3 vpdpbusd per 16 outputs; the unused fourth weight of each group is 0.
//
// vpdpbusd multiplies unsigned by signed bytes: signed activations are offset by +128 (an xor) and
// the exact correction -128 * sum(w) starts the accumulator. Every int32 addition wraps, and the
// planner's acc32 proof bounds the true sum, so the result is exact.
//
// Small planes (stride_h == stride_w, a padded row narrower than 16) run "flat": the plane is copied
// once with its padding, and output (y, x) at q = y*PW + x reads tap (ky, kx) at s*q + ky*dh*PW + kx,
// contiguous in q, so one 16-output block spans several rows instead of leaving most lanes idle.
#pragma once

#include <cstdint>

#include "integer/isa.h"
#include "integer/output_stage.h"
#include "integer/plan.h"
#include "integer/requant16_avx512.h"
#include "integer/requant_stage.h"

namespace qv::integer {

// The layer's constants for the byte kernel, or ok == false when it does not apply: it needs packed
// bytes in, pad_value inside the bytes' range, int8 weights, acc32, dilation_w 1, stride_w <= 3,
// kernel rows of <= 8 taps, and a CPU with AVX512-VBMI (the tier must be an AVX-512 one).
struct BytesDepthwise {
  bool ok = false;
  bool flat = false;
  bool is_signed = false;
  int groups = 1;             // 4-tap groups per kernel row: ceil(KW / 4)
  uint8_t pad_byte = 0;       // pad_value as stored (two's complement when signed)
  alignas(64) uint8_t index[2][64];  // vpermb indices of group g
};
BytesDepthwise bytes_depthwise_for(const DepthwiseLayer& L, const ActSource& in, Isa isa);

// The per-channel weight dwords: [ky][g] four int8 weights, and the accumulator's start (the signed
// offset's correction).
struct BytesTaps {
  int32_t w[16];
  int32_t start = 0;
};
BytesTaps bytes_taps(const DepthwiseLayer& L, const BytesDepthwise& B, const int32_t* w);

// Flat planes: the padded copy of one input plane into `padded` (PH*PW + 64 bytes).
void pad_plane_bytes(const DepthwiseLayer& L, const BytesDepthwise& B, const uint8_t* plane, uint8_t* padded);

// The int32 sums (without bias) of one output channel: output (y, x) at sums[y*pitch + x]; returns pitch.
// `plane`: the input plane (rows) or its padded copy (flat). sums: room for OH*max(OW, PW) + 16.
int64_t sums_bytes(const DepthwiseLayer& L, const BytesDepthwise& B, const uint8_t* plane, const BytesTaps& t, int32_t* sums);

// Rows only: the same sums through the 16-lane requant in registers into the output bytes; `track`:
// widen r by the accumulators and outputs (false only where the plan proved them, ranges_proven).
void requant_plane_bytes(const DepthwiseLayer& L, const BytesDepthwise& B, const uint8_t* plane, const BytesTaps& t,
                         const HighMulChannel& h, int32_t lo, int32_t hi, uint8_t* dst, Ranges32& r, bool track);

}  // namespace qv::integer
