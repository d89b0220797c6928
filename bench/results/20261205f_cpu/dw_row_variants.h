// Variants of dw_row for dw_row_probe.cpp: v1 holds the row pointers and strides in locals (what
// the typed vstore gives the compiler by itself), v2 takes interior pixels in pairs sharing their
// column loads (tried, not kept).
namespace asid { namespace cpu { namespace avx2 {
// V1: per pixel as dw_pixel, with the row pointers and strides held in locals.
template <typename T>
inline void dw_row_v1(const T* const rows[3], int64_t sw, int64_t W, int64_t C, const T* taps,
                      int64_t ldt, const T* bias, T* dst, int64_t ldd) {
  for (int64_t w0 = 0; w0 < W; w0 += kPixelTile) {
    const int64_t w1 = std::min(W, w0 + kPixelTile);
    for_channel_vectors<T>(C, [&](int64_t c, auto full) {
      constexpr bool F = decltype(full)::value;
      vec_t<T> t[9];
      for (int k = 0; k < 9; ++k) t[k] = vload(taps + k * ldt + c);
      const vec_t<T> b = bias ? vload(bias + c) : vec_t<T>{};
      const T* const r[3] = {rows[0] + c, rows[1] + c, rows[2] + c};
      T* const d = dst + c;
      const int64_t s = sw, ld = ldd, n = C;
      sweep_pixels(W, w0, w1, [&](int64_t w, auto left, auto right) {
        store_c<F>(d + w * ld,
                   dw_pixel<F, decltype(left)::value, decltype(right)::value>(r, w * s, s, t, n, b), n);
      });
    });
  }
}
// V2: interior pixels in pairs sharing their column loads.
template <bool F, typename T>
inline void dw_pair(const T* const r[3], int64_t off, int64_t s, const vec_t<T>* t, int64_t n,
                    vec_t<T> b, T* d0, T* d1) {
  const auto ld = [n](const T* p) { return load_c<F>(p, n); };
  vec_t<T> a0[3], a1[3];
  for (int dy = 0; dy < 3; ++dy) {
    const T* p = r[dy] + off;
    const vec_t<T> x0 = ld(p - s), x1 = ld(p), x2 = ld(p + s), x3 = ld(p + 2 * s);
    a0[dy] = x0 * t[3 * dy] + x1 * t[3 * dy + 1] + x2 * t[3 * dy + 2];
    a1[dy] = x1 * t[3 * dy] + x2 * t[3 * dy + 1] + x3 * t[3 * dy + 2];
  }
  store_c<F>(d0, b + a0[0] + (a0[1] + a0[2]), n);
  store_c<F>(d1, b + a1[0] + (a1[1] + a1[2]), n);
}
template <typename T>
inline void dw_row_v2(const T* const rows[3], int64_t sw, int64_t W, int64_t C, const T* taps,
                      int64_t ldt, const T* bias, T* dst, int64_t ldd) {
  for (int64_t w0 = 0; w0 < W; w0 += kPixelTile) {
    const int64_t w1 = std::min(W, w0 + kPixelTile);
    for_channel_vectors<T>(C, [&](int64_t c, auto full) {
      constexpr bool F = decltype(full)::value;
      vec_t<T> t[9];
      for (int k = 0; k < 9; ++k) t[k] = vload(taps + k * ldt + c);
      const vec_t<T> b = bias ? vload(bias + c) : vec_t<T>{};
      const T* const r[3] = {rows[0] + c, rows[1] + c, rows[2] + c};
      T* const d = dst + c;
      const int64_t s = sw, ld = ldd, n = C;
      int64_t w = w0;
      if (w == 0) {
        store_c<F>(d, W == 1 ? dw_pixel<F, false, false>(r, 0, s, t, n, b)
                             : dw_pixel<F, false, true>(r, 0, s, t, n, b), n);
        ++w;
      }
      const int64_t inner_end = std::min(w1, W - 1);
      for (; w + 1 < inner_end; w += 2) dw_pair<F>(r, w * s, s, t, n, b, d + w * ld, d + (w + 1) * ld);
      for (; w < inner_end; ++w) store_c<F>(d + w * ld, dw_pixel<F, true, true>(r, w * s, s, t, n, b), n);
      if (w < w1 && w == W - 1 && W > 1) store_c<F>(d + w * ld, dw_pixel<F, true, false>(r, w * s, s, t, n, b), n);
    });
  }
}
}}}
