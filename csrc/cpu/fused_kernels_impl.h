// The fused CPU kernel table of one instruction set; included once by each
// kernels_<isa>.cpp with ASID_CPU_ISA naming the namespace (see kernels_impl.h).
#pragma once

#ifndef ASID_CPU_ISA
#error "define ASID_CPU_ISA before including fused_kernels_impl.h"
#endif

#include "fused_kernel_table.h"
#include "tile_math.h"
#include "fused_math.h"
#include "fused_kernels.h"
#include "fused_chain_kernels.h"
#include "fused_linear_kernels.h"

namespace asid {
namespace cpu {
namespace ASID_CPU_ISA {

template <typename T>
const FusedKernelTable<T>* fused_kernel_table() {
  static const FusedKernelTable<T> table = {
      &layer_norm_forward<T>, &layer_norm_backward<T>, &dwconv_forward<T>,
      &dwconv_backward<T>,    &conv_chain<T>,         &linear<T>,
  };
  return &table;
}

template const FusedKernelTable<float>* fused_kernel_table<float>();
template const FusedKernelTable<double>* fused_kernel_table<double>();

}  // namespace ASID_CPU_ISA
}  // namespace cpu
}  // namespace asid
