// The packed GEMM's register tile, written once for any vector type V (simd/avx2.hpp,
// simd/avx512.hpp): V::mr rows x 2 vectors of accumulators (AVX-512 12x32, AVX2 6x16), and the
// five micro-kernels built on it (packed B, every A panel, direct, every A panel direct, direct
// across two images); with AVX-512 a wide tile of 8 rows x 3 vectors (packed B and direct).
// Included only by the ISA files gemm/avx2.cpp and gemm/avx512.cpp; internal linkage throughout.
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "kernels/cpu.hpp"
#include "kernels/gemm/dot.hpp"
#include "kernels/gemm/table.hpp"

namespace tinytorch::kernels {
namespace {

// Where the tile's A element (r, k) is: a packed panel's, a row's (row r at a + r * lda, rows past
// `rows` repeating the last), or, for a tile of all M rows (RowBases), a row's from a base pointer
// per three rows. With a pointer per row, M of them (12 with AVX-512) besides the loop's own did not
// fit the 16 general registers, and the compiler reloaded them from the stack in the inner loop
// (a 2048 -> 512 1x1 layer at 7x7, batch 1: 59% of the FMA peak; with the AVX-512VL build of
// tile_narrow below, 0.75 -> 0.71 ms); rows base, base + lda and base + 2 lda are one base
// register and the lda register (scaled by 4 and 8).
template <int MR>
struct PanelAt {
  const float* a;
  __attribute__((always_inline)) void step() {}
  __attribute__((always_inline)) const float* operator()(int r, int64_t k) const { return a + k * MR + r; }
};
template <int M>
struct RowsAt {
  const float* row[M];
  __attribute__((always_inline)) void step() {}
  __attribute__((always_inline)) const float* operator()(int r, int64_t k) const { return row[r] + k; }
};
template <int M>
struct RowBases {
  const float* base[(M + 2) / 3];
  int64_t lda;
  // Once per k: lda made opaque to the compiler, which otherwise turns each row's address into a
  // pointer of its own again (strength reduction), M of them.
  __attribute__((always_inline)) void step() { asm("" : "+r"(lda)); }
  __attribute__((always_inline)) const float* operator()(int r, int64_t k) const {
    return base[r / 3] + (r % 3) * lda + k;
  }
};

// Calls f(at) with A's addressing (above) for the tile's rows.
template <int MR, int M, bool Rows, class F>
__attribute__((always_inline)) inline void with_a(const float* a, int64_t lda, int rows, F f) {
  if constexpr (!Rows) {
    return f(PanelAt<MR>{a});
  } else {
    if (rows == M) {
      RowBases<M> at{};
#pragma GCC unroll 4
      for (int q = 0; q < (M + 2) / 3; ++q) at.base[q] = a + 3 * q * lda;
      at.lda = lda;
      return f(at);
    }
    RowsAt<M> at{};
#pragma GCC unroll 12
    for (int r = 0; r < M; ++r) at.row[r] = a + (r < rows ? r : rows - 1) * lda;
    f(at);
  }
}

// The tile's multiply-add loop, shared by the packed and the direct kernels, which differ only in
// where row k of B comes from (load_b(k, b0, b1) loads its two halves). acc0/acc1 hold the tile's
// two halves. M <= V::mr of the panel's rows are computed: the last panel of a layer whose channel
// count is not a multiple of MR (64, 128, 256 ... channels) runs only the rows it has. Half: a tile
// of at most V::width columns (the last pixels of a layer: 208 = 6 x 32 + 16 at 13x16) computes
// only the first half (b1 unused), half the multiply-adds; acc1 stays zero. (With AVX-512, tiles of
// at most 8 columns or of 17-24 take tile_narrow below.)
// A: a packed panel ([kc][MR], lda 0) or, with Rows, the rows of a row-major matrix (row r at
// a + r * lda, the caller's weight as it holds it: no packed copy to keep or compare). Rows reads
// only rows [0, rows): the rows of M past them repeat the last one (their results are not stored).
template <class V, int M, bool Half, bool Rows, class LoadB>
__attribute__((always_inline)) inline void tile(int64_t kc, const float* a, int64_t lda, int rows, LoadB load_b,
                                                typename V::reg (&acc0)[V::mr], typename V::reg (&acc1)[V::mr]) {
#pragma GCC unroll 12
  for (int r = 0; r < M; ++r) acc0[r] = acc1[r] = V::zero();
  with_a<V::mr, M, Rows>(
      a, lda, rows, [&](auto at) __attribute__((always_inline)) {
        for (int64_t k = 0; k < kc; ++k) {
          at.step();
          typename V::reg b0, b1;
          load_b(k, b0, b1);
#pragma GCC unroll 12
          for (int r = 0; r < M; ++r) {
            const typename V::reg av = V::broadcast(at(r, k));
            acc0[r] = V::fmadd(av, b0, acc0[r]);
            if constexpr (!Half) acc1[r] = V::fmadd(av, b1, acc1[r]);
          }
        }
      });
}

// The tile's loop for a tile of at most 3/4 of its width where V has a half vector (V::Narrow,
// AVX-512's ymm): Parts = 1, at most V::Narrow::width columns, one half vector per row; Parts = 3,
// at most V::width + V::Narrow::width, a vector and a half. On a CPU whose 512-bit multiply-adds
// take both 256-bit units (Zen 4) that is half or three quarters of the full tile's work where
// the Half tile (one vector) or the full one cost a whole vector more (a 7x7 image is a tile of 32
// pixels and one of 17: 56 lanes' work, not 64); elsewhere the same work. Row k of B starts at
// addr(k); acc0, acc1 are left as the full tile leaves them (the half vector widened, zeros past).
template <class V, int M, int Parts, bool Rows, class Addr>
__attribute__((always_inline)) inline void tile_narrow(int64_t kc, const float* a, int64_t lda, int rows, Addr addr,
                                                       typename V::reg (&acc0)[V::mr], typename V::reg (&acc1)[V::mr]) {
  using N = typename V::Narrow;
  typename N::reg half[M];
  // Only the registers the loop adds into are set before it, the others after. (The half vectors
  // live in ymm registers, which the AVX-512 build reaches up to ymm31 with AVX-512VL; without it,
  // GCC kept half of a 12-row tile's on the stack: a load and a store per multiply-add.)
#pragma GCC unroll 12
  for (int r = 0; r < M; ++r) {
    if constexpr (Parts == 3) acc0[r] = V::zero();
    half[r] = N::zero();
  }
  with_a<V::mr, M, Rows>(
      a, lda, rows, [&](auto at) __attribute__((always_inline)) {
        for (int64_t k = 0; k < kc; ++k) {
          at.step();
          const float* b = addr(k);
          if constexpr (Parts == 3) {
            const typename V::reg b0 = V::load(b);
            const typename N::reg b1 = N::load(b + V::width);
#pragma GCC unroll 12
            for (int r = 0; r < M; ++r) {
              const typename V::reg av = V::broadcast(at(r, k));
              acc0[r] = V::fmadd(av, b0, acc0[r]);
              half[r] = N::fmadd(V::low(av), b1, half[r]);
            }
          } else {
            const typename N::reg b0 = N::load(b);
#pragma GCC unroll 12
            for (int r = 0; r < M; ++r) half[r] = N::fmadd(N::broadcast(at(r, k)), b0, half[r]);
          }
        }
      });
#pragma GCC unroll 12
  for (int r = 0; r < M; ++r) {
    if constexpr (Parts == 3) {
      acc1[r] = V::widen(half[r]);
    } else {
      acc0[r] = V::widen(half[r]);
      acc1[r] = V::zero();
    }
  }
}

// Rows [0, rows) of the tile to c (ldc), columns [0, cols): added to c for Store::Accumulate, else
// plus bias[r] when bias is given; Store::Stream writes whole rows at aligned addresses with
// non-temporal stores (other rows as Store::Write).
template <class V, int M>
__attribute__((always_inline)) inline void store_tile(const typename V::reg (&acc0)[V::mr],
                                                      const typename V::reg (&acc1)[V::mr], float* c, int64_t ldc,
                                                      int rows, int cols, Store store, const float* bias) {
  // A constant trip count with a break, so that acc0[r] and acc1[r] have constant indices and the
  // accumulators stay in registers (a loop to `rows` made GCC keep them in memory: half the speed).
#pragma GCC unroll 12
  for (int r = 0; r < M; ++r) {
    if (r >= rows) break;
    float* row = c + r * ldc;
    typename V::reg v0 = acc0[r], v1 = acc1[r];
    if (cols < 2 * V::width) {  // a tile cut short (the last pixels of a layer)
      V::store_part(row, v0, v1, cols, store == Store::Accumulate, bias ? bias + r : nullptr);
      continue;
    }
    if (store == Store::Accumulate) {
      v0 = V::add(v0, V::load(row));
      v1 = V::add(v1, V::load(row + V::width));
    } else if (bias) {
      v0 = V::add(v0, V::set1(bias[r]));
      v1 = V::add(v1, V::set1(bias[r]));
    }
    if (store == Store::Stream && reinterpret_cast<uintptr_t>(row) % sizeof(typename V::reg) == 0) {
      V::stream(row, v0);
      V::stream(row + V::width, v1);
    } else {
      V::store(row, v0);
      V::store(row + V::width, v1);
    }
  }
}

// Calls f(std::integral_constant<int, M>) with the smallest tile height M of MR/3, 2MR/3, MR that
// covers `rows` (AVX-512: 4, 8, 12; AVX2: 2, 4, 6): the kernels are compiled for each.
template <int MR, class F>
inline void with_tile_rows(int rows, F f) {
  if (rows <= MR / 3) return f(std::integral_constant<int, MR / 3>{});
  if (rows <= 2 * MR / 3) return f(std::integral_constant<int, 2 * MR / 3>{});
  f(std::integral_constant<int, MR>{});
}

// Rows of the tile's A at a time: V::mr, or as many as L1 has ways where A is rows read in place
// (lda > 0) whose stride is a multiple of 4 KiB (1024 or 2048 input channels of a 1x1 layer). L1
// is indexed within a 4 KiB page (its size over its ways is 4 KiB), so such rows all fall in one
// set, and a tile reading more of them at every k than the set has ways misses L1 on every
// broadcast: on Zen 4's 8 ways, tiles of 12 such rows took 2048 -> 512 1x1 at 7x7, batch 1, 0.73
// ms, tiles of 8 (as many multiply-adds per load, the B rows read 1.5 times as often from L1) 0.64,
// as fast as 2032 -> 512; with 12 ways (Sapphire Rapids) tiles of 12 are as fast as 2032 -> 512
// already (docs/PERFORMANCE.md, "Weight rows in place"). AVX2's tiles of 6 rows fit both.
template <class V>
inline int tile_height(int64_t lda) {
  return lda > 0 && lda % 1024 == 0 ? std::clamp(l1d_ways(), 1, V::mr) : V::mr;
}

// The tile for `cols` columns (Half when they fit one vector; with V::Narrow, a half vector or a
// vector and a half when they fit those) from A packed (lda 0) or in rows; row k of B at addr(k).
template <class V, int M, class Addr>
__attribute__((always_inline)) inline void any_tile(int64_t kc, const float* a, int64_t lda, int rows, int cols,
                                                    Addr addr, typename V::reg (&acc0)[V::mr],
                                                    typename V::reg (&acc1)[V::mr]) {
  if constexpr (V::has_narrow) {
    constexpr int W = V::width, H = V::Narrow::width;
    if (cols <= H || (cols > W && cols <= W + H)) {
      if (cols <= H) {
        if (lda != 0) return tile_narrow<V, M, 1, true>(kc, a, lda, rows, addr, acc0, acc1);
        return tile_narrow<V, M, 1, false>(kc, a, lda, rows, addr, acc0, acc1);
      }
      if (lda != 0) return tile_narrow<V, M, 3, true>(kc, a, lda, rows, addr, acc0, acc1);
      return tile_narrow<V, M, 3, false>(kc, a, lda, rows, addr, acc0, acc1);
    }
  }
  const auto load_b = [addr](int64_t k, typename V::reg & b0, typename V::reg & b1) __attribute__((always_inline)) {
    const float* b = addr(k);
    b0 = V::load(b);
    b1 = V::load(b + V::width);
  };
  if (lda != 0) {
    if (cols <= V::width) return tile<V, M, true, true>(kc, a, lda, rows, load_b, acc0, acc1);
    return tile<V, M, false, true>(kc, a, lda, rows, load_b, acc0, acc1);
  }
  if (cols <= V::width) return tile<V, M, true, false>(kc, a, lda, rows, load_b, acc0, acc1);
  tile<V, M, false, false>(kc, a, lda, rows, load_b, acc0, acc1);
}

template <class V, int M>
void micro_rows(int64_t kc, const float* a, int64_t lda, const float* b, float* c, int64_t ldc, int rows, int cols,
                Store store, const float* bias) {
  typename V::reg acc0[V::mr], acc1[V::mr];
  const auto addr = [b](int64_t k) __attribute__((always_inline)) { return b + k * 2 * V::width; };
  any_tile<V, M>(kc, a, lda, rows, cols, addr, acc0, acc1);
  store_tile<V, M>(acc0, acc1, c, ldc, rows, cols, store, bias);
}

template <class V>
void micro(int64_t kc, const float* a, int64_t lda, const float* b, float* c, int64_t ldc, int rows, int cols,
           Store store, const float* bias) {
  const int h = tile_height<V>(lda);
  for (int r0 = 0; r0 < rows; r0 += h) {
    const int n = std::min(h, rows - r0);
    with_tile_rows<V::mr>(n, [&](auto m) {
      micro_rows<V, decltype(m)::value>(kc, a + r0 * lda, lda, b, c + r0 * ldc, ldc, n, cols, store,
                                        bias ? bias + r0 : nullptr);
    });
  }
}

// All the A panels of a layer against one B panel: rows [0, m) of C, panel by panel (rows in place
// in one L1 set: by tile_height's tiles, the panels' rows being consecutive rows of A).
template <class V>
void panels(int64_t kc, const float* a, int64_t a_stride, int64_t lda, int64_t m, const float* b, float* c, int64_t ldc,
            int cols, Store store, const float* bias) {
  constexpr int MR = V::mr;
  if (const int h = tile_height<V>(lda); h < MR) {
    for (int64_t r0 = 0; r0 < m; r0 += h) {
      micro<V>(kc, a + r0 * lda, lda, b, c + r0 * ldc, ldc, static_cast<int>(std::min<int64_t>(h, m - r0)), cols, store,
               bias ? bias + r0 : nullptr);
    }
    return;
  }
  int64_t r0 = 0;
  for (; r0 + MR <= m; r0 += MR, a += a_stride) {
    micro_rows<V, MR>(kc, a, lda, b, c + r0 * ldc, ldc, MR, cols, store, bias ? bias + r0 : nullptr);
  }
  if (r0 < m) {
    micro<V>(kc, a, lda, b, c + r0 * ldc, ldc, static_cast<int>(m - r0), cols, store, bias ? bias + r0 : nullptr);
  }
}

template <class V, int M>
void direct_rows(int64_t kc, const float* a, int64_t lda, const float* base, const int64_t* offset, float* c,
                 int64_t ldc, int rows, int cols, Store store, const float* bias) {
  typename V::reg acc0[V::mr], acc1[V::mr];
  const auto addr = [ base, offset ](int64_t k) __attribute__((always_inline)) { return base + offset[k]; };
  any_tile<V, M>(kc, a, lda, rows, cols, addr, acc0, acc1);
  store_tile<V, M>(acc0, acc1, c, ldc, rows, cols, store, bias);
}

template <class V>
void direct(int64_t kc, const float* a, int64_t lda, const float* base, const int64_t* offset, float* c, int64_t ldc,
            int rows, int cols, Store store, const float* bias) {
  const int h = tile_height<V>(lda);
  for (int r0 = 0; r0 < rows; r0 += h) {
    const int n = std::min(h, rows - r0);
    with_tile_rows<V::mr>(n, [&](auto m) {
      direct_rows<V, decltype(m)::value>(kc, a + r0 * lda, lda, base, offset, c + r0 * ldc, ldc, n, cols, store,
                                         bias ? bias + r0 : nullptr);
    });
  }
}

// All the A panels of a group against one direct tile: rows [0, m) of C, panel by panel (rows in
// place in one L1 set: by tile_height's tiles, as panels above).
template <class V>
void direct_panels(int64_t kc, const float* a, int64_t a_stride, int64_t lda, int64_t m, const float* base,
                   const int64_t* offset, float* c, int64_t ldc, int cols, Store store, const float* bias) {
  constexpr int MR = V::mr;
  if (const int h = tile_height<V>(lda); h < MR) {
    for (int64_t r0 = 0; r0 < m; r0 += h) {
      direct<V>(kc, a + r0 * lda, lda, base, offset, c + r0 * ldc, ldc, static_cast<int>(std::min<int64_t>(h, m - r0)),
                cols, store, bias ? bias + r0 : nullptr);
    }
    return;
  }
  int64_t r0 = 0;
  for (; r0 + MR <= m; r0 += MR, a += a_stride) {
    direct_rows<V, MR>(kc, a, lda, base, offset, c + r0 * ldc, ldc, MR, cols, store, bias ? bias + r0 : nullptr);
  }
  if (r0 < m) {
    direct<V>(kc, a, lda, base, offset, c + r0 * ldc, ldc, static_cast<int>(m - r0), cols, store,
              bias ? bias + r0 : nullptr);
  }
}

// A tile whose pixels straddle two images: lanes [0, split) are pixels of the first (B rows at
// base0 + offset[k], output at c0), lanes [split, cols) the first pixels of the next (B rows at
// base1 + offset[k], output at c1). Masked loads: no lane reads the other image.
template <class V, int M>
void direct_split_rows(int64_t kc, const float* a, int64_t lda, const float* base0, const float* base1, int split,
                       const int64_t* offset, float* c0, float* c1, int64_t ldc, int rows, int cols, Store store,
                       const float* bias) {
  constexpr int W = V::width;
  const typename V::Mask lo0 = V::first(split), lo1 = V::first(split - W);
  const float* b1p = base1 - split;  // lane j >= split reads base1[j - split]
  typename V::reg acc0[V::mr], acc1[V::mr];
  const auto load_b = [=](int64_t k, typename V::reg & b0, typename V::reg & b1) __attribute__((always_inline)) {
    const float *p0 = base0 + offset[k], *p1 = b1p + offset[k];
    b0 = V::load_blend(lo0, p0, p1);
    b1 = V::load_blend(lo1, p0 + W, p1 + W);
  };
  if (lda != 0) {
    tile<V, M, false, true>(kc, a, lda, rows, load_b, acc0, acc1);
  } else {
    tile<V, M, false, false>(kc, a, lda, rows, load_b, acc0, acc1);
  }
  store_tile<V, M>(acc0, acc1, c0, ldc, rows, split, store, bias);  // the first image's lanes
  // The second image's: lanes [split, cols) shifted down to 0 through a buffer.
  alignas(64) float shifted[4 * W] = {};
#pragma GCC unroll 12
  for (int r = 0; r < M; ++r) {
    if (r >= rows) break;
    V::store(shifted, acc0[r]);
    V::store(shifted + W, acc1[r]);
    acc0[r] = V::load(shifted + split);
    acc1[r] = V::load(shifted + split + W);
  }
  store_tile<V, M>(acc0, acc1, c1, ldc, rows, cols - split, store, bias);
}

template <class V>
void direct_split(int64_t kc, const float* a, int64_t lda, const float* base0, const float* base1, int split,
                  const int64_t* offset, float* c0, float* c1, int64_t ldc, int rows, int cols, Store store,
                  const float* bias) {
  const int h = tile_height<V>(lda);
  for (int r0 = 0; r0 < rows; r0 += h) {
    const int n = std::min(h, rows - r0);
    with_tile_rows<V::mr>(n, [&](auto m) {
      direct_split_rows<V, decltype(m)::value>(kc, a + r0 * lda, lda, base0, base1, split, offset, c0 + r0 * ldc,
                                               c1 + r0 * ldc, ldc, n, cols, store, bias ? bias + r0 : nullptr);
    });
  }
}

// The wide tile: M rows of A read in place (lda > 0) x 3 vectors of pixels, row k of B at addr(k),
// for a run whose last 2-vector tile would be mostly empty (gemm_packed.hpp, wide_gemm_tile). Each
// output's sum runs over k in the same order as the 2-vector tile's: the same bits.
template <class V, int M, class Addr>
__attribute__((always_inline)) inline void tile3(int64_t kc, const float* a, int64_t lda, int rows, Addr addr,
                                                 typename V::reg (&acc)[3][M]) {
#pragma GCC unroll 8
  for (int r = 0; r < M; ++r) acc[0][r] = acc[1][r] = acc[2][r] = V::zero();
  with_a<V::mr, M, true>(
      a, lda, rows, [&](auto at) __attribute__((always_inline)) {
        for (int64_t k = 0; k < kc; ++k) {
          at.step();
          const float* b = addr(k);
          const typename V::reg b0 = V::load(b), b1 = V::load(b + V::width), b2 = V::load(b + 2 * V::width);
#pragma GCC unroll 8
          for (int r = 0; r < M; ++r) {
            const typename V::reg av = V::broadcast(at(r, k));
            acc[0][r] = V::fmadd(av, b0, acc[0][r]);
            acc[1][r] = V::fmadd(av, b1, acc[1][r]);
            acc[2][r] = V::fmadd(av, b2, acc[2][r]);
          }
        }
      });
}

// Rows [0, rows) and columns [0, cols) of the wide tile to c (ldc), as store_tile stores (a
// Stream store is written as Write: the wide tile serves calls of at most 256 pixels).
template <class V, int M>
__attribute__((always_inline)) inline void store_tile3(typename V::reg (&acc)[3][M], float* c, int64_t ldc, int rows,
                                                       int cols, Store store, const float* bias) {
  constexpr int W = V::width;
#pragma GCC unroll 8
  for (int r = 0; r < M; ++r) {
    if (r >= rows) break;
    float* row = c + r * ldc;
#pragma GCC unroll 3
    for (int j = 0; j < 3; ++j) {
      const int n = cols - j * W;
      if (n <= 0) break;
      typename V::reg v = acc[j][r];
      if (n < W) {
        V::store_part(row + j * W, v, V::zero(), n, store == Store::Accumulate, bias ? bias + r : nullptr);
        continue;
      }
      if (store == Store::Accumulate) {
        v = V::add(v, V::load(row + j * W));
      } else if (bias) {
        v = V::add(v, V::set1(bias[r]));
      }
      V::store(row + j * W, v);
    }
  }
}

// Rows [0, m) of C against one wide B tile, 2 MR / 3 rows at a time (AVX-512: 8 rows, 24
// accumulators); row k of B at addr(k).
template <class V, class Addr>
void wide_rows(int64_t kc, const float* a, int64_t lda, int64_t m, Addr addr, float* c, int64_t ldc, int cols,
               Store store, const float* bias) {
  constexpr int M = 2 * V::mr / 3;
  for (int64_t r0 = 0; r0 < m; r0 += M) {
    const int rows = static_cast<int>(std::min<int64_t>(M, m - r0));
    auto run = [&](auto height) __attribute__((always_inline)) {  // a last tile of at most M / 2 rows: half of it
      constexpr int H = decltype(height)::value;
      typename V::reg acc[3][H];
      tile3<V, H>(kc, a + r0 * lda, lda, rows, addr, acc);
      store_tile3<V, H>(acc, c + r0 * ldc, ldc, rows, cols, store, bias ? bias + r0 : nullptr);
    };
    if (rows <= M / 2) {
      run(std::integral_constant<int, M / 2>{});
    } else {
      run(std::integral_constant<int, M>{});
    }
  }
}

template <class V>
void gemm_wide(int64_t kc, const float* a, int64_t lda, int64_t m, const float* b, float* c, int64_t ldc, int cols,
               Store store, const float* bias) {
  wide_rows<V>(
      kc, a, lda, m, [b](int64_t k) __attribute__((always_inline)) { return b + k * 3 * V::width; }, c, ldc, cols,
      store, bias);
}

template <class V>
void direct_wide(int64_t kc, const float* a, int64_t lda, int64_t m, const float* base, const int64_t* offset, float* c,
                 int64_t ldc, int cols, Store store, const float* bias) {
  wide_rows<V>(
      kc, a, lda, m, [ base, offset ](int64_t k) __attribute__((always_inline)) { return base + offset[k]; }, c, ldc,
      cols, store, bias);
}

// The table of one ISA's micro-kernels.
template <class V>
const GemmKernels& gemm_kernels_of() {
  // The wide tile where 3 vectors of accumulators fit the registers beside the B rows (AVX-512's
  // 32; AVX2's 16 would hold 4 rows, whose broadcasts would outnumber the multiply-adds' loads).
  constexpr bool wide = V::width == 16;
  static const GemmKernels table{{V::mr, 2 * V::width, V::name},
                                 &micro<V>,
                                 &panels<V>,
                                 &direct<V>,
                                 &direct_panels<V>,
                                 &direct_split<V>,
                                 &dot_rows<V>,
                                 wide ? GemmTile{2 * V::mr / 3, 3 * V::width, V::name} : GemmTile{0, 0, V::name},
                                 wide ? &gemm_wide<V> : nullptr,
                                 wide ? &direct_wide<V> : nullptr};
  return table;
}

}  // namespace
}  // namespace tinytorch::kernels
