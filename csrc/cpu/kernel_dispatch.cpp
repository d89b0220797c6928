// Run-time choice of the CPU kernel tables, window/channel and fused (AVX2+FMA when compiled in
// and supported by the CPU).
#include <ATen/ATen.h>

#include <atomic>

#include "fused_kernel_table.h"
#include "kernel_table.h"

namespace asid {
namespace cpu {
namespace {

bool cpu_has_avx2_fma() {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();  // may run during static initialisation
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return false;
#endif
}

bool avx2_available() { return avx2::kernel_table<float>() != nullptr && cpu_has_avx2_fma(); }

std::atomic<bool> use_avx2{avx2_available()};

}  // namespace

template <typename T>
const KernelTable<T>& kernels() {
  return use_avx2.load() ? *avx2::kernel_table<T>() : *baseline::kernel_table<T>();
}
template const KernelTable<float>& kernels<float>();
template const KernelTable<double>& kernels<double>();

template <typename T>
const FusedKernelTable<T>& fused_kernels() {
  return use_avx2.load() ? *avx2::fused_kernel_table<T>() : *baseline::fused_kernel_table<T>();
}
template const FusedKernelTable<float>& fused_kernels<float>();
template const FusedKernelTable<double>& fused_kernels<double>();

std::string active_isa() { return use_avx2.load() ? "avx2" : "baseline"; }

std::string set_isa(const std::string& name) {
  if (name == "auto") {
    use_avx2 = avx2_available();
  } else if (name == "baseline") {
    use_avx2 = false;
  } else if (name == "avx2") {
    TORCH_CHECK(avx2_available(), "the AVX2+FMA kernels are not available (",
                avx2::kernel_table<float>() ? "the CPU lacks AVX2/FMA" : "not compiled in", ")");
    use_avx2 = true;
  } else {
    TORCH_CHECK(false, "cpu isa must be 'auto', 'baseline' or 'avx2', got '", name, "'");
  }
  return active_isa();
}

}  // namespace cpu
}  // namespace asid
