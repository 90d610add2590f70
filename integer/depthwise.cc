#include "integer/depthwise.h"

#include "integer/tensor_alloc.h"

#include <algorithm>
#include <mutex>
#include <vector>

namespace qv::integer {

namespace {

struct PlaneArgs {
  const int32_t* plane;  // padded input plane [PH][PW]
  const int32_t* weight; // [KH*KW]
  int64_t PW, OH, OW, KH, KW;
  int stride_h, stride_w, dilation_h, dilation_w;
  void* acc;             // [OH*OW] of Acc
};

// The plane's accumulators without bias. SW: the stride along the row as a constant (0: runtime).
template <class Acc, int SW>
inline __attribute__((always_inline)) void plane_body(const PlaneArgs& a) {
  Acc* acc = static_cast<Acc*>(a.acc);
  const int64_t sw = SW > 0 ? SW : a.stride_w;
  for (int64_t y = 0; y < a.OH; ++y) {
    Acc* row = acc + y * a.OW;
    for (int64_t x = 0; x < a.OW; ++x) row[x] = 0;
    for (int64_t ky = 0; ky < a.KH; ++ky) {
      const int32_t* in_row = a.plane + (y * a.stride_h + ky * a.dilation_h) * a.PW;
      for (int64_t kx = 0; kx < a.KW; ++kx) {
        const Acc w = a.weight[ky * a.KW + kx];
        const int32_t* in = in_row + kx * a.dilation_w;
        for (int64_t x = 0; x < a.OW; ++x) row[x] += w * static_cast<Acc>(in[x * sw]);
      }
    }
  }
}

template <class Acc>
inline __attribute__((always_inline)) void plane_any(const PlaneArgs& a) {
  if (a.stride_w == 1)
    plane_body<Acc, 1>(a);
  else if (a.stride_w == 2)
    plane_body<Acc, 2>(a);
  else
    plane_body<Acc, 0>(a);
}

void plane_scalar32(const PlaneArgs& a) { plane_any<int32_t>(a); }
void plane_scalar64(const PlaneArgs& a) { plane_any<int64_t>(a); }
__attribute__((target("avx2"))) void plane_avx2_32(const PlaneArgs& a) { plane_any<int32_t>(a); }
__attribute__((target("avx2"))) void plane_avx2_64(const PlaneArgs& a) { plane_any<int64_t>(a); }
__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl"))) void plane_avx512_32(const PlaneArgs& a) { plane_any<int32_t>(a); }
__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl"))) void plane_avx512_64(const PlaneArgs& a) { plane_any<int64_t>(a); }

}  // namespace

MinMax run_depthwise(const DepthwiseLayer& L, const IntTensor& input, const OutputStage& out, Isa isa, ThreadPool& pool,
                     Workspace& ws) {
  const int64_t N = input.dim(0), m = L.O / L.C, P = L.OH * L.OW, plane_size = L.PH * L.PW;
  void (*plane_fn)(const PlaneArgs&);
  Path tier;
  switch (isa) {
    case Isa::avx512vnni: plane_fn = L.acc32 ? plane_avx512_32 : plane_avx512_64, tier = Path::depthwise_avx512; break;
    case Isa::avx2: plane_fn = L.acc32 ? plane_avx2_32 : plane_avx2_64, tier = Path::depthwise_avx2; break;
    default: plane_fn = L.acc32 ? plane_scalar32 : plane_scalar64, tier = Path::depthwise_scalar; break;
  }
  // Padded int32 planes, one per (n, c).
  int32_t* planes = scratch(ws.planes, N * L.C * plane_size);
  pool.run(N * L.C, [&](int64_t nc) {
    int32_t* dst = planes + nc * plane_size;
    std::fill(dst, dst + plane_size, static_cast<int32_t>(L.pad_value));
    for (int64_t y = 0; y < L.H; ++y) {
      const int64_t* src = input.data.data() + (nc * L.H + y) * L.W;
      int32_t* d = dst + (y + L.pad_top) * L.PW + L.pad_left;
      for (int64_t x = 0; x < L.W; ++x) d[x] = static_cast<int32_t>(src[x]);  // the planner proved the range
    }
  });
  MinMax total;
  std::mutex total_mutex;
  pool.run(N * L.O, [&](int64_t no) {
    const int64_t n = no / L.O, o = no % L.O, c = o / m;
    int64_t* dst = out.acc_out + no * P;  // (n, o) plane of the NCHW output
    thread_local std::vector<int32_t> acc32;
    if (L.acc32) acc32.resize(static_cast<size_t>(P));
    PlaneArgs a{planes + (n * L.C + c) * plane_size, L.weight.data() + o * L.KH * L.KW, L.PW, L.OH, L.OW, L.KH, L.KW,
                L.stride_h, L.stride_w, L.dilation_h, L.dilation_w, L.acc32 ? static_cast<void*>(acc32.data()) : dst};
    plane_fn(a);
    const int64_t bias = L.bias[static_cast<size_t>(o)];
    if (L.acc32)
      for (int64_t p = 0; p < P; ++p) dst[p] = static_cast<int64_t>(acc32[static_cast<size_t>(p)]) + bias;
    else
      for (int64_t p = 0; p < P; ++p) dst[p] += bias;
    MinMax mm;
    finish_run(out, n, o, 0, P, mm);
    std::lock_guard<std::mutex> lock(total_mutex);
    total.merge(mm);
  });
  PathCounters& pc = path_counters();
  pc.add(tier);
  pc.add(L.acc32 ? Path::depthwise_acc32 : Path::depthwise_acc64);
  return total;
}

}  // namespace qv::integer
