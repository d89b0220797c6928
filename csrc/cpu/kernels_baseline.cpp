// CPU kernels compiled for the build's baseline target (x86-64: SSE2).
#define ASID_CPU_ISA baseline
#include "kernels_impl.h"
