// Run-time choice of the CPU kernels' instruction set (cpu/isa.h).
#include "cpu/isa.h"

#include <c10/util/Exception.h>

#include <atomic>
#include <cstring>

namespace asid {
namespace cpu {
namespace {

// Whether this CPU runs the set at `index` of kIsaNames.
bool cpu_supports(int index) {
  if (index == 0) return true;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();  // may run during static initialisation
  const std::string name = kIsaNames[index];
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (name == "avx2") return avx2;
  if (name == "avx512")
    return avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
#endif
  return false;
}

int fastest_supported() {
  int best = 0;
  for (int i = 1; i < kIsaCount; ++i)
    if (cpu_supports(i)) best = i;
  return best;
}

std::atomic<int> active{fastest_supported()};

}  // namespace

int active_isa() { return active.load(std::memory_order_relaxed); }

bool bf16_products_supported() {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  static const bool cpu_has = (__builtin_cpu_init(), __builtin_cpu_supports("avx512bf16"));
  return cpu_has && std::strcmp(kIsaNames[active_isa()], "avx512") == 0;
#else
  return false;
#endif
}

std::string set_isa(const std::string& name) {
  if (name == "auto") {
    active = fastest_supported();
    return kIsaNames[active_isa()];
  }
  for (int i = 0; i < kIsaCount; ++i) {
    if (name != kIsaNames[i]) continue;
    TORCH_CHECK(cpu_supports(i), "this CPU does not support the '", name, "' kernels");
    active = i;
    return name;
  }
  std::string names;
  for (const char* n : kIsaNames) names += std::string(names.empty() ? "" : ", ") + "'" + n + "'";
  TORCH_CHECK(false, "cpu isa must be 'auto' or one of ", names, ", got '", name, "'");
}

}  // namespace cpu
}  // namespace asid
