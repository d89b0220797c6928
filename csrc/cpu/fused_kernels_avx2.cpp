// Fused CPU kernels compiled for AVX2 + FMA (GCC on x86-64 only); standard headers first so that
// only this project's kernel code gets the AVX2 target (see kernels_avx2.cpp).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "fused_kernel_table.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#define ASID_CPU_ISA avx2
#include "fused_kernels_impl.h"
#pragma GCC pop_options
#else
namespace asid {
namespace cpu {
namespace avx2 {
template <typename T>
const FusedKernelTable<T>* fused_kernel_table() {
  return nullptr;
}
template const FusedKernelTable<float>* fused_kernel_table<float>();
template const FusedKernelTable<double>* fused_kernel_table<double>();
}  // namespace avx2
}  // namespace cpu
}  // namespace asid
#endif
