// The first include of each generated per-instruction-set translation unit (setup.py): the
// standard and torch-free headers the CPU kernels use, compiled before the unit's `#pragma GCC
// target` together with the op's own header, so that only this project's kernel code is built for
// the instruction set (inline library code and the argument structs stay baseline).
#pragma once

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <new>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "common/layout.h"
#include "cpu/isa.h"
#include "cpu/work_queue.h"
