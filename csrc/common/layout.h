// How the kernels address channels-last maps, torch-free (shared by the C++ and CUDA kernels):
// MapView (a strided (B, H, W, C) map), RowGrid (its pixels as rows), GroupLayout (its pixels in
// groups: windows or cells).
//
// A channels-last map (B, H, W, d) with unit channel stride is split into groups of pixels:
// window attention groups its tokens by window, channel attention by window or by cell offset.
// Every grouping used by ASID has the same form: member (mi, mj) of group (gx, gy) of image b is
// pixel (gx * group_step_h + mi * member_step_h, gy * group_step_w + mj * member_step_w).
// Groups are ordered (b, gx, gy) and members row-major (mi, mj).
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define ASID_HD __host__ __device__ __forceinline__
#else
#define ASID_HD inline
#endif

namespace asid {

struct GroupLayout {
  int64_t batch = 0;
  int64_t groups_h = 0, groups_w = 0;            // groups per image along H and W
  int64_t members_h = 0, members_w = 0;          // pixels per group along H and W
  int64_t group_step_h = 0, group_step_w = 0;    // pixel distance between adjacent groups
  int64_t member_step_h = 0, member_step_w = 0;  // pixel distance between adjacent members

  ASID_HD int64_t num_groups() const { return batch * groups_h * groups_w; }
  ASID_HD int64_t group_size() const { return members_h * members_w; }
};

// Grouping of window attention: "meso" token (i, j) of window (X, Y) is pixel (w X + i, w Y + j);
// "global" token (i, j) of window (X, Y) is pixel (i H/w + X, j W/w + Y).
inline GroupLayout window_attention_layout(bool global, int64_t batch, int64_t h, int64_t w,
                                           int64_t window) {
  GroupLayout g;
  g.batch = batch;
  g.groups_h = h / window;
  g.groups_w = w / window;
  g.members_h = g.members_w = window;
  if (global) {
    g.group_step_h = g.group_step_w = 1;
    g.member_step_h = g.groups_h;
    g.member_step_w = g.groups_w;
  } else {
    g.group_step_h = g.group_step_w = window;
    g.member_step_h = g.member_step_w = 1;
  }
  return g;
}

// Grouping of channel attention: "window" group (X, Y) holds pixels (w X + i, w Y + j) over
// (i, j); "cell" group (i, j) holds the same pixels over (X, Y).
inline GroupLayout channel_attention_layout(bool cell, int64_t batch, int64_t h, int64_t w,
                                            int64_t window) {
  GroupLayout g;
  g.batch = batch;
  const int64_t nx = h / window, ny = w / window;
  if (cell) {
    g.groups_h = g.groups_w = window;
    g.members_h = nx;
    g.members_w = ny;
    g.group_step_h = g.group_step_w = 1;
    g.member_step_h = g.member_step_w = window;
  } else {
    g.groups_h = nx;
    g.groups_w = ny;
    g.members_h = g.members_w = window;
    g.group_step_h = g.group_step_w = window;
    g.member_step_h = g.member_step_w = 1;
  }
  return g;
}

// A channels-last map: element (b, y, x, c) sits at data[b*sb + y*sh + x*sw + c].
template <typename T>
struct MapView {
  T* data = nullptr;
  int64_t sb = 0, sh = 0, sw = 0;
};

// Offset (in elements) of member 0 of group g (flat index in the order above).
template <typename T>
ASID_HD int64_t group_origin(const MapView<T>& map, const GroupLayout& l, int64_t g) {
  const int64_t gy = g % l.groups_w;
  const int64_t gx = (g / l.groups_w) % l.groups_h;
  const int64_t b = g / (l.groups_w * l.groups_h);
  return b * map.sb + gx * l.group_step_h * map.sh + gy * l.group_step_w * map.sw;
}

// Offset of member (mi, mj) relative to its group's origin.
template <typename T>
ASID_HD int64_t member_offset(const MapView<T>& map, const GroupLayout& l, int64_t mi, int64_t mj) {
  return mi * l.member_step_h * map.sh + mj * l.member_step_w * map.sw;
}

// Offset (in elements) of member m (flat, row-major) of group g.
template <typename T>
ASID_HD int64_t pixel_offset(const MapView<T>& map, const GroupLayout& l, int64_t g, int64_t m) {
  return group_origin(map, l, g) + member_offset(map, l, m / l.members_w, m % l.members_w);
}

// Rows of a (B, H, W, C) map: row r = (b, h, w) in row-major order.
struct RowGrid {
  int64_t batch = 0, height = 0, width = 0, channels = 0;
  ASID_HD int64_t rows() const { return batch * height * width; }
  template <typename T>
  ASID_HD T* row(const MapView<T>& m, int64_t r) const {
    const int64_t w = r % width, bh = r / width;
    return m.data + (bh / height) * m.sb + (bh % height) * m.sh + w * m.sw;
  }
};

}  // namespace asid
