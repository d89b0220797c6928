// The Python module asid_fast._C. Loading it registers every operator of the shared library;
// it also exposes how it was built and which CPU instruction set the kernels use.
#include <torch/extension.h>

#include "cpu/kernel_table.h"

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "asid_fast compiled operators (registered in torch.ops.asid_fast)";
#ifdef ASID_FAST_WITH_CUDA
  m.attr("built_with_cuda") = true;
#else
  m.attr("built_with_cuda") = false;
#endif
  m.def("cpu_isa", &asid::cpu::active_isa,
        "Instruction set of the CPU kernels in use: 'avx2' (AVX2+FMA) or 'baseline'.");
  m.def("set_cpu_isa", &asid::cpu::set_isa, pybind11::arg("name"),
        "Force 'baseline' or 'avx2' CPU kernels, or 'auto'; returns the set in use.");
}
