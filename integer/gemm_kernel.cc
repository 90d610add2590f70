#include "integer/gemm_kernel.h"

namespace qv::integer {

const GemmKernel* gemm_kernel(Isa isa, Packing packing) {
  switch (isa) {
    case Isa::scalar: return packing == Packing::q8 ? &kGemmQ8Scalar : packing == Packing::q16 ? &kGemmQ16Scalar : nullptr;
    case Isa::avx2: return packing == Packing::q16 ? &kGemmQ16Avx2 : nullptr;
    case Isa::avx512vnni:
    case Isa::avx512amx:
      return packing == Packing::q8 ? &kGemmQ8Avx512Vnni : packing == Packing::q16 ? &kGemmQ16Avx512Vnni : &kGemmQ8SplitAvx512Vnni;
  }
  return nullptr;
}

}  // namespace qv::integer
