// The instruction sets the CPU kernels are built for, torch-free. setup.py compiles every
// csrc/cpu/kernels/*.h once per set (its CPU_ISAS, the same sets in the same order), inside
// namespace asid::cpu::<set> and for that set's target; an op takes the build of the set in use
// at each call (select_kernel): the fastest the CPU supports, or the one set_isa forced (tests,
// benchmarks).
#pragma once

#include <string>

// M(set, args...) for each set, slowest first.
#define ASID_FOR_EACH_CPU_ISA(M, ...) \
  M(baseline, __VA_ARGS__) M(avx2, __VA_ARGS__) M(avx512, __VA_ARGS__)

namespace asid {
namespace cpu {

#define ASID_ISA_NAME(set, ...) #set,
inline constexpr const char* kIsaNames[] = {ASID_FOR_EACH_CPU_ISA(ASID_ISA_NAME, )};
#undef ASID_ISA_NAME
constexpr int kIsaCount = sizeof(kIsaNames) / sizeof(kIsaNames[0]);

class WorkQueue;

// Index (in kIsaNames) of the set in use.
int active_isa();
// Use the named set (error if the CPU lacks it), or "auto" (the fastest it supports); returns
// the name of the set in use.
std::string set_isa(const std::string& name);

// Whether the set in use multiplies in bf16 where an op allows it (bf16_products.h): the
// AVX-512 build on a CPU with AVX512-BF16.
bool bf16_products_supported();

template <typename Fn>
Fn select_kernel(const Fn (&builds)[kIsaCount]) {
  return builds[active_isa()];
}

}  // namespace cpu
}  // namespace asid

// In an op's torch-free header: declares CPU kernel `name`, void name<T>(const Args<T>&,
// WorkQueue&), in every set's namespace.
#define ASID_DECLARE_CPU_KERNEL_IN(set, name, Args) \
  namespace set {                                   \
  template <typename T>                             \
  void name(const Args<T>&, WorkQueue&);            \
  }
#define ASID_DECLARE_CPU_KERNEL(name, Args) \
  namespace cpu {                           \
  ASID_FOR_EACH_CPU_ISA(ASID_DECLARE_CPU_KERNEL_IN, name, Args)  \
  }

// In an op's entry: the build of kernel `name` for element type T of the set in use.
#define ASID_CPU_BUILD(set, name, T) &::asid::cpu::set::name<T>,
#define ASID_CPU_KERNEL(name, T) \
  ::asid::cpu::select_kernel<decltype(&::asid::cpu::baseline::name<T>)>( \
      {ASID_FOR_EACH_CPU_ISA(ASID_CPU_BUILD, name, T)})

// At the end of a kernel header: compiles kernel `name` for float and double in the set being
// built.
#define ASID_INSTANTIATE_CPU_KERNEL(name, Args)               \
  template void name<float>(const Args<float>&, WorkQueue&); \
  template void name<double>(const Args<double>&, WorkQueue&);
