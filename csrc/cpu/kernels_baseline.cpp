// The CPU kernels (window/channel and fused tables) compiled for the build's baseline target
// (x86-64: SSE2).
#define ASID_CPU_ISA baseline
#include "kernels_impl.h"
#include "fused_kernels_impl.h"
