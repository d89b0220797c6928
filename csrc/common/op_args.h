// Arguments of the window-operator kernels, torch-free (shared by the C++ and CUDA kernels).
//
// T is the storage type of the maps; S the type of the channel-attention statistics (attn, rq,
// rk), which the CUDA kernels keep in float for half-precision maps. Maps are channels-last with a
// unit channel stride (see group_layout.h); matrices are contiguous.
#pragma once

#include "group_layout.h"

namespace asid {

// out = softmax(scale q k^T + bias) v per window; attn (G, n, n) is the softmax.
template <typename T>
struct WindowFwdArgs {
  GroupLayout layout;
  int64_t dim = 0;
  MapView<const T> q, k, v;
  const T* bias = nullptr;  // (n, n) or null
  double scale = 1.0;
  MapView<T> out;
  T* attn = nullptr;
};

// Gradients of WindowFwdArgs; grad_attn (G, n, n) may be null, dbias (n, n) is the sum over
// windows (written only when non-null).
template <typename T>
struct WindowBwdArgs {
  GroupLayout layout;
  int64_t dim = 0;
  MapView<const T> q, k, v, grad_out;
  const T* attn = nullptr;
  const T* grad_attn = nullptr;
  double scale = 1.0;
  MapView<T> dq, dk, dv;
  T* dbias = nullptr;
};

// out = attn v per window, attn (G, n, n) given.
template <typename T>
struct SharedFwdArgs {
  GroupLayout layout;
  int64_t dim = 0;
  const T* attn = nullptr;
  MapView<const T> v;
  MapView<T> out;
};

template <typename T>
struct SharedBwdArgs {
  GroupLayout layout;
  int64_t dim = 0;
  const T* attn = nullptr;
  MapView<const T> v, grad_out;
  T* dattn = nullptr;  // (G, n, n)
  MapView<T> dv;
};

// Per group of n pixels: qn, kn = q, k channel rows (length n) scaled by rq, rk =
// 1 / max(||row||, 1e-12); attn = softmax(temperature qn kn^T) (C x C); out = attn v.
template <typename T, typename S = T>
struct ChannelFwdArgs {
  GroupLayout layout;
  int64_t channels = 0;
  MapView<const T> q, k, v;
  const T* temperature = nullptr;  // one element
  MapView<T> out;
  S* attn = nullptr;         // (G, C, C)
  S* rq = nullptr;           // (G, C)
  S* rk = nullptr;           // (G, C)
};

// Gradients of ChannelFwdArgs; dtemperature (one element) is the sum over groups.
template <typename T, typename S = T>
struct ChannelBwdArgs {
  GroupLayout layout;
  int64_t channels = 0;
  MapView<const T> q, k, v, grad_out;
  const T* temperature = nullptr;
  const S* attn = nullptr;
  const S* rq = nullptr;
  const S* rk = nullptr;
  MapView<T> dq, dk, dv;
  T* dtemperature = nullptr;
};

constexpr double kNormEps = 1e-12;  // F.normalize's eps in the reference

}  // namespace asid
