// The fused CPU kernels as seen by the op wrappers: one table per instruction set, compiled twice
// like the window kernels (kernels_<isa>.cpp) and chosen with the same run-time switch
// (kernel_table.h: active_isa / set_isa).
#pragma once

#include "../common/fused_args.h"

namespace asid {
namespace cpu {

template <typename T>
struct FusedKernelTable {
  void (*layer_norm_forward)(const LayerNormFwdArgs<T>&, int64_t begin, int64_t end);
  void (*layer_norm_backward)(const LayerNormBwdArgs<T>&, int64_t begin, int64_t end);
  void (*dwconv_forward)(const DwconvFwdArgs<T>&, int64_t begin, int64_t end);
  void (*dwconv_backward)(const DwconvBwdArgs<T>&, int64_t begin, int64_t end);
  void (*conv_chain)(const ConvChainArgs<T>&, int64_t begin, int64_t end);
  void (*linear)(const LinearArgs<T>&, int64_t begin, int64_t end);
};

namespace baseline {
template <typename T>
const FusedKernelTable<T>* fused_kernel_table();
}
namespace avx2 {
template <typename T>
const FusedKernelTable<T>* fused_kernel_table();  // null when not compiled for AVX2
}

// The table of the instruction set in use (asid::cpu::active_isa()).
template <typename T>
const FusedKernelTable<T>& fused_kernels();

}  // namespace cpu
}  // namespace asid
