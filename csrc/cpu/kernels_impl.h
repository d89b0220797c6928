// The CPU kernel table of one instruction set. Included once by each kernels_<isa>.cpp with
// ASID_CPU_ISA naming the namespace (and, for AVX2, the code-generation target already set), so
// the same source is compiled once per instruction set.
#pragma once

#ifndef ASID_CPU_ISA
#error "define ASID_CPU_ISA before including kernels_impl.h"
#endif

#include "channel_kernels.h"
#include "kernel_table.h"
#include "window_kernels.h"

namespace asid {
namespace cpu {
namespace ASID_CPU_ISA {

template <typename T>
const KernelTable<T>* kernel_table() {
  static const KernelTable<T> table = {
      &window_forward<T>,  &window_backward<T>, &shared_forward<T>,
      &shared_backward<T>, &channel_forward<T>, &channel_backward<T>,
  };
  return &table;
}

template const KernelTable<float>* kernel_table<float>();
template const KernelTable<double>* kernel_table<double>();

}  // namespace ASID_CPU_ISA
}  // namespace cpu
}  // namespace asid
