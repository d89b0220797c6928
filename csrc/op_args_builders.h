// Kernel arguments (common/op_args.h) filled from checked tensors, shared by the CPU and CUDA
// registrations. T is the kernels' element type for the maps' dtype (same size), S that of the
// channel statistics. Reduced gradients (dbias, dtemperature) are left for the caller to point.
#pragma once

#include <ATen/ATen.h>

#include "common/op_args.h"
#include "op_inputs.h"

namespace asid {

template <typename T>
WindowFwdArgs<T> window_fwd_args(const GroupLayout& l, const at::Tensor& q, const at::Tensor& k,
                                 const at::Tensor& v, const at::Tensor& bias, double scale,
                                 const at::Tensor& out, const at::Tensor& attn) {
  WindowFwdArgs<T> a;
  a.layout = l;
  a.dim = q.size(3);
  a.q = map_view<const T>(q);
  a.k = map_view<const T>(k);
  a.v = map_view<const T>(v);
  a.bias = data_or_null<const T>(bias);
  a.scale = scale;
  a.out = map_view<T>(out);
  a.attn = data_or_null<T>(attn);
  return a;
}

template <typename T>
WindowBwdArgs<T> window_bwd_args(const GroupLayout& l, const at::Tensor& grad_out,
                                 const at::Tensor& grad_attn, const at::Tensor& q,
                                 const at::Tensor& k, const at::Tensor& v, const at::Tensor& attn,
                                 double scale, const at::Tensor& dq, const at::Tensor& dk,
                                 const at::Tensor& dv) {
  WindowBwdArgs<T> a;
  a.layout = l;
  a.dim = q.size(3);
  a.q = map_view<const T>(q);
  a.k = map_view<const T>(k);
  a.v = map_view<const T>(v);
  a.grad_out = map_view<const T>(grad_out);
  a.attn = data_or_null<const T>(attn);
  a.grad_attn = data_or_null<const T>(grad_attn);
  a.scale = scale;
  a.dq = map_view<T>(dq);
  a.dk = map_view<T>(dk);
  a.dv = map_view<T>(dv);
  return a;
}

template <typename T>
SharedFwdArgs<T> shared_fwd_args(const GroupLayout& l, const at::Tensor& attn, const at::Tensor& v,
                                 const at::Tensor& out) {
  SharedFwdArgs<T> a;
  a.layout = l;
  a.dim = v.size(3);
  a.attn = data_or_null<const T>(attn);
  a.v = map_view<const T>(v);
  a.out = map_view<T>(out);
  return a;
}

template <typename T>
SharedBwdArgs<T> shared_bwd_args(const GroupLayout& l, const at::Tensor& attn, const at::Tensor& v,
                                 const at::Tensor& grad_out, const at::Tensor& dattn,
                                 const at::Tensor& dv) {
  SharedBwdArgs<T> a;
  a.layout = l;
  a.dim = v.size(3);
  a.attn = data_or_null<const T>(attn);
  a.v = map_view<const T>(v);
  a.grad_out = map_view<const T>(grad_out);
  a.dattn = data_or_null<T>(dattn);
  a.dv = map_view<T>(dv);
  return a;
}

template <typename T, typename S>
ChannelFwdArgs<T, S> channel_fwd_args(const GroupLayout& l, const at::Tensor& q,
                                      const at::Tensor& k, const at::Tensor& v,
                                      const at::Tensor& temperature, const at::Tensor& out,
                                      const at::Tensor& attn, const at::Tensor& rq,
                                      const at::Tensor& rk) {
  ChannelFwdArgs<T, S> a;
  a.layout = l;
  a.channels = q.size(3);
  a.q = map_view<const T>(q);
  a.k = map_view<const T>(k);
  a.v = map_view<const T>(v);
  a.temperature = data_or_null<const T>(temperature);
  a.out = map_view<T>(out);
  a.attn = data_or_null<S>(attn);
  a.rq = data_or_null<S>(rq);
  a.rk = data_or_null<S>(rk);
  return a;
}

template <typename T, typename S>
ChannelBwdArgs<T, S> channel_bwd_args(const GroupLayout& l, const at::Tensor& grad_out,
                                      const at::Tensor& q, const at::Tensor& k,
                                      const at::Tensor& v, const at::Tensor& temperature,
                                      const at::Tensor& attn, const at::Tensor& rq,
                                      const at::Tensor& rk, const at::Tensor& dq,
                                      const at::Tensor& dk, const at::Tensor& dv) {
  ChannelBwdArgs<T, S> a;
  a.layout = l;
  a.channels = q.size(3);
  a.q = map_view<const T>(q);
  a.k = map_view<const T>(k);
  a.v = map_view<const T>(v);
  a.grad_out = map_view<const T>(grad_out);
  a.temperature = data_or_null<const T>(temperature);
  a.attn = data_or_null<const S>(attn);
  a.rq = data_or_null<const S>(rq);
  a.rk = data_or_null<const S>(rk);
  a.dq = map_view<T>(dq);
  a.dk = map_view<T>(dk);
  a.dv = map_view<T>(dv);
  return a;
}

}  // namespace asid
