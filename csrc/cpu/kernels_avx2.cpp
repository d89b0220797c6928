// The CPU kernels (window/channel and fused tables) compiled for AVX2 + FMA (GCC on x86-64 only),
// used only when the CPU reports both features. Standard headers come first so that only this
// project's kernel code is compiled for the AVX2 target (inline library code shared with other
// translation units stays baseline).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <new>
#include <string>
#include <vector>

#include "fused_kernel_table.h"
#include "kernel_table.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#define ASID_CPU_ISA avx2
#include "kernels_impl.h"
#include "fused_kernels_impl.h"
#pragma GCC pop_options
#else
namespace asid {
namespace cpu {
namespace avx2 {
template <typename T>
const KernelTable<T>* kernel_table() {
  return nullptr;
}
template const KernelTable<float>* kernel_table<float>();
template const KernelTable<double>* kernel_table<double>();
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
