// The Python module asid_fast._C. Loading it registers the kernels of every operator (the
// schemas come from asid_fast.ops); it also tells how it was built and which CPU instruction
// set the kernels use.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>
#include <vector>

#include "cpu/isa.h"
#include "ops/output_cache.h"

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "asid_fast compiled kernels (registered for the ops in torch.ops.asid_fast)";
#ifdef ASID_FAST_WITH_CUDA
  m.attr("built_with_cuda") = true;
#else
  m.attr("built_with_cuda") = false;
#endif
  std::vector<std::string> isas(std::begin(asid::cpu::kIsaNames), std::end(asid::cpu::kIsaNames));
  m.attr("cpu_isas") = isas;
  m.def("cpu_isa", [] { return std::string(asid::cpu::kIsaNames[asid::cpu::active_isa()]); },
        "Instruction set of the CPU kernels in use.");
  m.def("set_cpu_isa", &asid::cpu::set_isa, pybind11::arg("name"),
        "Use the named CPU kernels (one of cpu_isas; error if the CPU lacks it), or 'auto'; "
        "returns the set in use.");
  m.def("bf16_products_supported", &asid::cpu::bf16_products_supported,
        "Whether the CPU kernels in use multiply in bf16 where torch allows it "
        "(torch.backends.mkldnn.matmul.fp32_precision = 'bf16'): AVX-512 kernels on a CPU "
        "with AVX512-BF16.");
  m.def("output_cache_bytes", &asid::output_cache_bytes,
        "Bytes held in freed CPU output blocks kept for reuse.");
  m.def("output_cache_limit", &asid::output_cache_limit, "The CPU output cache's byte limit.");
  m.def("set_output_cache_limit", &asid::set_output_cache_limit, pybind11::arg("bytes"),
        "Keep at most this many bytes of freed CPU output blocks (0: keep none).");
  m.def("empty_output_cache", &asid::empty_output_cache,
        "Return every freed CPU output block to the system.");
}
