#include "integer/gemm_kernel.h"

namespace qv::integer {

const GemmKernel* gemm_kernel(Isa isa, Packing packing) {
  switch (isa) {
    case Isa::scalar: return packing == Packing::q8 ? &kGemmQ8Scalar : &kGemmQ16Scalar;
    case Isa::avx2: return packing == Packing::q8 ? nullptr : &kGemmQ16Avx2;
    case Isa::avx512vnni:
    case Isa::avx512amx: return packing == Packing::q8 ? &kGemmQ8Avx512Vnni : &kGemmQ16Avx512Vnni;
  }
  return nullptr;
}

}  // namespace qv::integer
