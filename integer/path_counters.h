// Which kernel paths ran: one counter per path, incremented once per layer (or per requant channel
// group) that used it, so tests can assert that every compiled path was exercised and benchmarks can
// show where the time went. One enumerator drives the names, the counters and the tests.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string_view>

namespace qv::integer {

#define QV_INTEGER_PATHS(X)                                                                              \
  X(gemm_q8_scalar)          /* u8 x s8 granules of 4, portable C++ */                                   \
  X(gemm_q8_avx512vnni)      /* u8 x s8 granules of 4, vpdpbusd */                                        \
  X(gemm_q8_amx)             /* u8 x s8 granules of 4, AMX tdpbusd on 16x16 int32 tiles */                \
  X(conv_q8_amx_rows)        /* conv of stride 1-4, AMX tdpbsud, [channel][pixel] tiles over packed rows */ \
  X(conv_q8_amx_im2col)      /* conv_q8_amx_rows of a conv over <= 8 channels: the rows gathered per tap */ \
  X(conv_q8_vnni_rows)       /* the same driver on vpdpbusd: pixels x broadcast weight granules */        \
  X(conv_q8_vnni_rows_tail)  /* its blocks' last count % 16 pixels: broadcast pixel granules x weight panels */ \
  X(rows_weight_prefetch)    /* a channel block's last task prefetching the next block's weight panels into L1 */ \
  X(rows_tail_requant_fma)   /* a fused block's tail pixels requantized in registers across channels (fma form) */ \
  X(pack_rows_vbmi)          /* the rows driver's byte packing 64 pixels at a time: vpermt2b, then vpermt2w */ \
  X(pack_rows_per_thread)    /* a flat layer of the rows driver on several threads: each thread packs the whole image for its blocks */ \
  X(gemm_q16_scalar)         /* s16 x s16 granules of 2, portable C++ */                                  \
  X(gemm_q16_avx2)           /* s16 x s16 granules of 2, vpmaddwd + vpaddd */                             \
  X(gemm_q16_avx512vnni)     /* s16 x s16 granules of 2, vpdpwssd */                                      \
  X(gemm_q8_split_avx512vnni) /* u16 activations as low and high byte granules x s8 weights, two vpdpbusd */ \
  X(gemm_acc32)              /* the whole reduction proven to fit int32 */                                \
  X(gemm_acc32_chunked)      /* int32 chunks proven to fit, summed in int64 */                            \
  X(depthwise_scalar)                                                                                     \
  X(depthwise_avx2)                                                                                       \
  X(depthwise_avx512)                                                                                     \
  X(depthwise_acc32)                                                                                      \
  X(depthwise_acc64)                                                                                      \
  X(conv2d_reference)        /* operands too wide for int16 packing: the reference kernel */              \
  X(linear_reference)                                                                                     \
  X(requant_fused)           /* a requant node computed in its conv/linear output stage */                \
  X(requant_exact_shift)     /* exact form, dyadic: int64 multiply-add and a rounding shift */            \
  X(requant_exact_dyadic_equivalent) /* exact, non-dyadic: a dyadic shift proven equal on the range */  \
  X(requant_exact_div64)     /* exact, non-dyadic, not proven equal to a shift: int64 division */        \
  X(requant_exact_div64_ifma_narrow) /* the same straight into bytes (output mode, apply_narrow) */ \
  X(requant_exact_div64_ifma) /* the same division on 8 lanes by AVX-512 IFMA multiply-high */          \
  X(requant_exact_steps)     /* exact, none of those: the exact step positions and a binary search */     \
  X(requant_exact_bigint)    /* exact form otherwise: requant_ref per element */                          \
  X(requant_mul_add_shift_int64)                                                                          \
  X(requant_mul_add_shift_int128)                                                                         \
  X(requant_thresholds)                                                                                   \
  X(requant_fixed_point_single)                                                                           \
  X(requant_fixed_point_double)                                                                           \
  X(requant_ref)             /* a form whose fixed-width preconditions are not proven: requant_ref */     \
  X(max_pool2d)                                                                                           \
  X(max_pool2d_bytes)        /* evaluate_output: max_pool2d on packed bytes */                           \
  X(avg_pool2d_bytes)        /* evaluate_output: avg_pool2d on packed bytes, int32 window sums */       \
  X(add_requant)             /* per-branch requant stages, __int128 sum, clamp */                       \
  X(other_reference)         /* pools, adds, hadamard, flatten: the reference kernels */                 \
  X(add_saturating_bytes)    /* evaluate_output: add_saturating of packed 8-bit operands */              \
  X(output_packed)           /* evaluate_output: a node kept as one byte per value */                    \
  X(gemm_requant8_avx512)    /* evaluate_output: requant in registers from the int32 tile, bytes out */ \
  X(requant_high_mul16)      /* evaluate_output: the 16-lane int32 shift route (requant16_avx512.h) */ \
  X(requant_high_mul16_untracked) /* the same without range tracking: NodePlan::ranges_proven */ \
  X(requant_fma16)           /* its channels' fma form, floor(t*f + b) in float32 (requant_fma16.h) */ \
  X(requant_in_block_vnni)   /* evaluate_output: conv_q8_vnni_rows blocks requantized in registers */ \
  X(requant_in_block_packed) /* the same narrowed four vectors at a time by saturating packs (pack4_bytes) */ \
  X(depthwise_int16_avx512)  /* depthwise on int16 phase planes, tap pairs by vpdpwssd */ \
  X(depthwise_bytes_vbmi)    /* evaluate_output: depthwise on the packed bytes, vpermb windows, vpdpbusd */ \
  X(depthwise_bytes_compact) /* the byte kernel's flat planes of <= 256 positions and rows of <= 16 requantized in registers, compacted by vpermb */ \
  X(depthwise_bytes_compact_run) /* the same for a task's whole run of channels in one call (depth multiplier 1, every channel on the 16-lane route) */ \
  X(depthwise_bytes_register_windows) /* a run's flat planes of <= 64 bytes from one register: each window, padding included, one masked vpermb */ \
  X(requant_table)           /* evaluate_output: add_requant / requant by per-channel tables (requant_table.h) */ \
  X(add_requant_gather_avx512) /* evaluate_output: tabulated add_requant terms by vpgatherdd, int32 sums */ \
  X(add_requant_affine)      /* evaluate_output: the same where every branch's table is affine: terms by vpmulld / vpmuldq */ \
  X(add_requant_then_high_mul16) /* evaluate_output: such sums and the requant reading them, in registers */ \
  X(add_requant_pair_dyadic) /* the same for two affine byte branches: one int32 form of the pair (add_pair_dyadic.h) */ \
  X(add_requant_planes_vbmi) /* evaluate_output: the same with int16 terms looked up by vpermt2b (add_planes_vbmi.h) */ \
  X(add_requant_then_requant) /* evaluate_output: such sums through an L1 buffer into the requant's own route */ \
  X(requant_narrow)          /* evaluate_output: a standalone requant straight into packed bytes */

// Raises a flag that tasks on several threads set when they take a path, to count it once after the
// run: a load first, so that the flag's cache line is written once per run instead of bouncing
// between the cores at every task (a relaxed store still takes the line exclusively).
inline void mark_taken(std::atomic<bool>& flag) {
  if (!flag.load(std::memory_order_relaxed)) flag.store(true, std::memory_order_relaxed);
}

enum class Path {
#define QV_X(name) name,
  QV_INTEGER_PATHS(QV_X)
#undef QV_X
      count
};

inline constexpr size_t kPathCount = static_cast<size_t>(Path::count);

std::string_view to_string(Path p);

struct PathCounters {
  std::array<std::atomic<uint64_t>, kPathCount> counts{};
  uint64_t get(Path p) const { return counts[static_cast<size_t>(p)].load(std::memory_order_relaxed); }
  void add(Path p, uint64_t n = 1) { counts[static_cast<size_t>(p)].fetch_add(n, std::memory_order_relaxed); }
  void reset() {
    for (auto& c : counts) c.store(0, std::memory_order_relaxed);
  }
};

// The process-wide counters (every evaluation adds to them).
PathCounters& path_counters();

}  // namespace qv::integer
