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
//
// Flat planes of at most 256 positions q, and rows of at most 16 outputs, keep the 16-lane requant of
// each block in registers: four blocks' bytes (64 lanes) are compacted by one vpermb into the outputs
// they hold (the lanes at x >= OW dropped) and written by one masked store.
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
  // The compaction of the 16-lane requant's bytes (chunks > 0). Flat planes of at most 256 positions
  // q = y*PW + x: chunk j holds q in [64j, 64j + 64), the outputs p in [p_begin[j], p_begin[j + 1]),
  // lane i of its compaction takes byte compact[j][i] (q(p_begin[j] + i) - 64j). Rows of OW <= 16:
  // a chunk is four rows of 16 lanes, the same compact[0] for all.
  int chunks = 0;                    // 0: no compaction
  int64_t q_total = 0;               // flat: (OH - 1) * PW + OW, the positions the sums span
  int64_t p_begin[5] = {};
  uint16_t valid[16] = {};           // block b (of the plane when flat, of the chunk for rows): its output lanes
  alignas(64) uint8_t compact[4][64];
};
BytesDepthwise bytes_depthwise_for(const DepthwiseLayer& L, const ActSource& in, Isa isa);

// The per-channel weight dwords (DepthwiseByteTaps in plan.h), packed into L.byte_taps by the planner
// when the kernel rows fit (KW <= 8, KH * ceil(KW / 4) <= 16, int8 weights); left empty otherwise.
using BytesTaps = DepthwiseByteTaps;
void pack_byte_taps(DepthwiseLayer& L);

// Planes of at most 64 bytes (7x7 above all: the last stage of the MobileNets) with byte taps and at
// most 256 outputs: L.register_windows, so that the run of a task's channels (requant_compact_bytes_run)
// loads each plane once into a register and builds every window, padding included, by one masked vpermb
// from it, for 16 outputs in order (no padded positions between rows: a 7x7 plane is 4 blocks, not the
// flat layout's 4 under a 3x3 kernel and 6 under a 7x7 one). The flat layout's padded copy was written
// in 16-byte rows and read back at once in 64-byte windows, which store forwarding cannot serve: each
// load waited for the stores to retire. Left empty where the shape does not fit.
void pack_register_windows(DepthwiseLayer& L);

// Flat planes: the padded copy of one input plane into `padded` (PH*PW + 64 bytes), a masked 16-byte
// load and store per padded row (PW < 16).
void pad_plane_bytes(const DepthwiseLayer& L, const BytesDepthwise& B, const uint8_t* plane, uint8_t* padded);

// The int32 sums (without bias) of one output channel: output (y, x) at sums[y*pitch + x]; returns pitch.
// `plane`: the input plane (rows) or its padded copy (flat). sums: room for OH*max(OW, PW) + 16.
int64_t sums_bytes(const DepthwiseLayer& L, const BytesDepthwise& B, const uint8_t* plane, const BytesTaps& t, int32_t* sums);

// Rows only: the same sums through the 16-lane requant in registers into the output bytes; `track`:
// widen r by the accumulators and outputs (false only where the plan proved them, ranges_proven).
void requant_plane_bytes(const DepthwiseLayer& L, const BytesDepthwise& B, const uint8_t* plane, const BytesTaps& t,
                         const HighMulChannel& h, int32_t lo, int32_t hi, uint8_t* dst, Ranges32& r, bool track);

// B.chunks > 0: the same compacted in registers into the output bytes (OH*OW of them at dst); `plane`
// as for sums_bytes (the padded copy when flat).
void requant_compact_bytes(const DepthwiseLayer& L, const BytesDepthwise& B, const uint8_t* plane, const BytesTaps& t,
                           const HighMulChannel& h, int32_t lo, int32_t hi, uint8_t* dst, Ranges32& r, bool track);

// Channels [c_begin, c_end) of one image of a layer with O == C, every one with hm[c].ok and B.chunks > 0:
// for each, the padded copy (flat) and requant_compact_bytes, with the shape and layout dispatched once
// for the run; a layer with L.register_windows takes each plane from one register instead (no padded
// copy, no compaction). `input`: the image's first input plane; `dst`: its first output plane (OH*OW
// bytes each).
void requant_compact_bytes_run(const DepthwiseLayer& L, const BytesDepthwise& B, const uint8_t* input, int64_t c_begin, int64_t c_end,
                               const HighMulChannel* hm, int32_t lo, int32_t hi, uint8_t* dst, Ranges32& r, bool track);

}  // namespace qv::integer
