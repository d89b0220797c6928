// Window attention's softmax rows in whole vectors: once Q K^T + bias is in a scratch tile, the
// rows' maxima, exponentials and sums are formed with vector operations (balanced reductions) and
// the normalised rows go to the attention output; in the backward, each row of dO V^T +
// grad_attn becomes the softmax gradient and its dbias share in one pass, in registers. Rows
// longer than kMaxRowVectors vectors use the multi-pass row functions of tile_math.h.
//
// Included only by the kernel headers (per-ISA namespace, see tile_math.h).
#pragma once

#include <cmath>
#include <type_traits>

#include "cpu/bf16_products.h"
#include "cpu/tile_math.h"

namespace asid {
namespace cpu {
namespace ASID_CPU_ISA {

constexpr int kMaxRowVectors = 8;

template <typename V>
ASID_VEC_INLINE V vmax(V a, V b) {
  return a > b ? a : b;
}

template <int B>
struct SwapLanes {  // lane i takes lane i ^ B
  static constexpr int at(size_t i) { return int(i) ^ B; }
};

// Every lane set to op over v's lanes: a butterfly of lane swaps, halves first (log2(lanes)
// steps).
template <int B = 0, typename V, typename Op>
ASID_VEC_INLINE V all_lanes(V v, const Op& op) {
  constexpr int L = sizeof(V) / sizeof(v[0]);
  constexpr int S = B == 0 ? L / 2 : B;
  if constexpr (S == 0) {
    return v;
  } else {
    v = op(v, shuffle<SwapLanes<S>, L>(v, v));
    if constexpr (S == 1) {
      return v;
    } else {
      return all_lanes<S / 2>(v, op);
    }
  }
}

template <typename V>
ASID_VEC_INLINE V all_max(V v) {
  return all_lanes(v, [](V a, V b) { return vmax(a, b); });
}
template <typename V>
ASID_VEC_INLINE V all_sum(V v) {
  return all_lanes(v, [](V a, V b) { return a + b; });
}

// exp(x) for x <= 0 or -inf, per lane (double: libm).
ASID_VEC_INLINE vec_t<float> exp_lanes(vec_t<float> x) { return exp_nonpositive(x); }
ASID_VEC_INLINE vec_t<double> exp_lanes(vec_t<double> x) {
  for (int i = 0; i < lanes<double>(); ++i) x[i] = std::exp(x[i]);
  return x;
}

template <typename T>
ASID_VEC_INLINE vec_t<T> lane_indices() {
  vec_t<T> v;
  for (int i = 0; i < lanes<T>(); ++i) v[i] = T(i);
  return v;
}

// Calls f(std::integral_constant<int, NV>) with NV the number of vectors covering a row of n
// entries; false (nothing called) when that exceeds kMaxRowVectors.
template <typename T, typename F>
inline bool with_row_vectors(int64_t n, const F& f) {
  static_assert(kMaxRowVectors == 8, "one case per row width below");
  switch ((n + lanes<T>() - 1) / lanes<T>()) {
#define ASID_ROW_CASE(nv)                      \
  case nv:                                     \
    f(std::integral_constant<int, nv>{});      \
    return true;
    ASID_ROW_CASE(1) ASID_ROW_CASE(2) ASID_ROW_CASE(3) ASID_ROW_CASE(4)
    ASID_ROW_CASE(5) ASID_ROW_CASE(6) ASID_ROW_CASE(7) ASID_ROW_CASE(8)
#undef ASID_ROW_CASE
    default:
      return false;
  }
}

struct MaxOp {
  template <typename V>
  ASID_VEC_INLINE V operator()(V a, V b) const {
    return vmax(a, b);
  }
};
struct AddOp {
  template <typename V>
  ASID_VEC_INLINE V operator()(V a, V b) const {
    return a + b;
  }
};

// op over x[LO, HI) as a balanced tree: dependency chains of log2 length instead of one long
// chain (the order is fixed, so the result does not depend on the compiler).
template <int LO, int HI, typename V, typename Op>
ASID_VEC_INLINE V tree_reduce(const V* x, const Op& op) {
  if constexpr (HI - LO == 1) {
    return x[LO];
  } else {
    constexpr int MID = (LO + HI) / 2;
    return op(tree_reduce<LO, MID>(x, op), tree_reduce<MID, HI>(x, op));
  }
}

// Vector v of a row of n entries held in NV vectors: only the last one may be partial (tail =
// entries in it); partial loads fill zeros.
template <int NV, typename T>
ASID_VEC_INLINE vec_t<T> load_row_vector(const T* row, int v, int64_t tail) {
  return v < NV - 1 ? vload(row + v * lanes<T>()) : load_n(row + v * lanes<T>(), tail);
}
template <int NV, typename T>
ASID_VEC_INLINE void store_row_vector(T* row, int v, int64_t tail, vec_t<T> x) {
  if (v < NV - 1) vstore(row + v * lanes<T>(), x);
  else store_n(row + v * lanes<T>(), x, tail);
}

// p = softmax of each row of s (rows x n, stride lds, read as NV whole vectors per row); p is
// rows x n, contiguous. Three passes over the rows (all in L1): maxima, then exponentials (to p)
// and sums, then scaling. A row's exponentials depend only on its max, so the core overlaps those
// of consecutive rows; with one row at a time in registers (max, exp, sum, scale), the chain of
// each row would hold up the next.
template <int NV, typename T>
void softmax_rows_vectorized(const T* s, int64_t lds, int64_t rows, int64_t n, T* p) {
  using V = vec_t<T>;
  constexpr int L = lanes<T>();
  const int64_t tail = n - (NV - 1) * L;
  const V outside = vsplat<T>(-INFINITY);
  const V valid = lane_indices<T>() < T(tail) ? vsplat<T>(0) : outside;  // 0 or -inf per lane
  const auto load = [&](int64_t r, int v) {  // padded keys take no weight
    const V x = vload(s + r * lds + v * L);
    return v == NV - 1 ? x + valid : x;
  };
  T max[kMaxRowVectors * L], inv[kMaxRowVectors * L];
  for (int64_t r = 0; r < rows; ++r) {
    V x[NV];
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) x[v] = load(r, v);
    max[r] = all_max(tree_reduce<0, NV>(x, MaxOp()))[0];
  }
  for (int64_t r = 0; r < rows; ++r) {
    const V m = vsplat(max[r]);
    V sum{};
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) {
      const V e = exp_lanes(load(r, v) - m);
      store_row_vector<NV>(p + r * n, v, tail, e);
      sum += e;
    }
    inv[r] = T(1) / all_sum(sum)[0];
  }
  for (int64_t r = 0; r < rows; ++r) {
    const V scale = vsplat(inv[r]);
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v)
      store_row_vector<NV>(p + r * n, v, tail, load_row_vector<NV>(p + r * n, v, tail) * scale);
  }
}

// ds = p o (ds - rowsum(p o ds)) row by row, and dbias += ds when not null: ds (rows x NV
// vectors, stride ldd, zero past column n and stays so); p and dbias rows x n, contiguous.
template <int NV, typename T>
void softmax_backward_in_registers(const T* p, T* ds, int64_t ldd, int64_t rows, int64_t n,
                                   T* dbias) {
  using V = vec_t<T>;
  const int64_t tail = n - (NV - 1) * lanes<T>();
  for (int64_t r = 0; r < rows; ++r, p += n, ds += ldd) {
    V g[NV], pr[NV], prod[NV];
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) {
      g[v] = vload(ds + v * lanes<T>());
      pr[v] = load_row_vector<NV>(p, v, tail);
      prod[v] = pr[v] * g[v];
    }
    const V dot = all_sum(tree_reduce<0, NV>(prod, AddOp()));
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) vstore(ds + v * lanes<T>(), g[v] = pr[v] * (g[v] - dot));
    if (dbias) {
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v)
        store_row_vector<NV>(dbias, v, tail, load_row_vector<NV>(dbias, v, tail) + g[v]);
      dbias += n;
    }
  }
}

// Where a product that starts from the n x n matrix m (zeros when m is null) reads it: in place
// when its rows fill whole vectors (n == ld), else a copy in scratch (n x ld) padded to them.
// The row stride to read it with is n in place, ld from the copy.
template <typename T>
inline const T* product_start(const T* m, int64_t n, int64_t ld, T* scratch) {
  if (!m || n == ld) return m;
  copy_matrix(m, n, n, n, scratch, ld);
  return scratch;
}

// P = softmax(Q K^T + bias) over keys: Q (n x d, stride ldq), K^T (d x >= n, stride ldk, zero
// past column n), bias (n x n) or null; P (n x n, contiguous). The scores go to scratch (n x ldk),
// their row softmax to P. bf16: the products with bf16 inputs (cpu/bf16_products.h).
template <typename T>
inline void scores_softmax(int64_t n, int64_t d, const T* q, int64_t ldq, const T* kt, int64_t ldk,
                           const T* bias, T* p, T* scratch, bool bf16 = false) {
  const T* start = product_start(bias, n, ldk, scratch);
  tile_products(bf16, n, ldk, d, q, ldq, kt, ldk, scratch, ldk, start, start == scratch ? ldk : n);
  if (!with_row_vectors<T>(n, [&](auto nv) {
        softmax_rows_vectorized<decltype(nv)::value>(scratch, ldk, n, n, p);
      }))
    softmax_rows(scratch, n, n, ldk, p, n);
}

// dS = P o (dP - rowsum(P o dP)) with dP = dO V^T + grad_attn: dO (n x d, stride ldo), V^T
// (d x >= n, stride ldv, zero past column n), P and grad_attn (n x n, contiguous; grad_attn may be
// null); dS (n x ldv, zero past column n). dbias (n x n), when not null, gets dS added.
template <typename T>
inline void softmax_grad(int64_t n, int64_t d, const T* go, int64_t ldo, const T* vt, int64_t ldv,
                         const T* grad_attn, const T* p, T* ds, T* dbias) {
  const T* start = product_start(grad_attn, n, ldv, ds);
  gemm(n, ldv, d, go, ldo, vt, ldv, ds, ldv, start, start == ds ? ldv : n);
  if (with_row_vectors<T>(n, [&](auto nv) {
        softmax_backward_in_registers<decltype(nv)::value>(p, ds, ldv, n, n, dbias);
      }))
    return;
  softmax_backward_rows(p, n, ds, ldv, n, n);
  if (dbias) copy_matrix(ds, ldv, n, n, dbias, n, /*accumulate=*/true);
}

}  // namespace ASID_CPU_ISA
}  // namespace cpu
}  // namespace asid
