// The recurrent product of a step, h W^T for a few dozen or hundred rows of 64-odd features,
// written out with ATen's vector type and handed to the cell update while it is in registers.
//
// A general matrix product (MKL, oneDNN) spends much of such a small product on packing and
// dispatch, and on some processors runs a generic code path; here a block of rows times a
// few vectors of columns is summed in registers, k = 0 .. depth-1 in order, one fused
// multiply-add per term. Each output element is a function of its own row alone, summed in the
// same order whatever the batch: a text gets the same bits alone or among others.

#pragma once

#include <ATen/cpu/vec/vec.h>

#include <algorithm>
#include <cstdint>

namespace product {

using Vec = at::vec::Vectorized<float>;

// How many rows a block holds for `Groups` vectors of columns: Rows * Groups accumulators and
// Groups column vectors in the 32 (AVX-512) or 16 (AVX2) vector registers.
template <int Groups>
constexpr int block_rows() {
  return Groups >= 4 ? 6 : (Groups == 3 ? 8 : 12);
}

// sums[r][g] = sum_k a[r * lda + k] * w[k * ldw + column + g * stride] for the first `count`
// floats of each vector (the rest are zero).
template <int Rows, int Groups>
inline void block(const float* a, int64_t lda, const float* w, int64_t ldw, int64_t depth, int64_t column,
                  int64_t stride, int64_t count, Vec (&sums)[Rows][Groups]) {
  // Local accumulators: vector types may alias floats, so sums kept in `sums` itself would go
  // through memory at every term.
  Vec local[Rows][Groups];
  for (int r = 0; r < Rows; ++r)
    for (int g = 0; g < Groups; ++g) local[r][g] = Vec(0.f);
  if (count == Vec::size()) {
    for (int64_t k = 0; k < depth; ++k) {
      const float* row = w + k * ldw + column;
      Vec columns[Groups];
      for (int g = 0; g < Groups; ++g) columns[g] = Vec::loadu(row + g * stride);
      for (int r = 0; r < Rows; ++r) {
        const Vec x(a[r * lda + k]);
        for (int g = 0; g < Groups; ++g) local[r][g] = at::vec::fmadd(x, columns[g], local[r][g]);
      }
    }
  } else {
    for (int64_t k = 0; k < depth; ++k) {
      const float* row = w + k * ldw + column;
      Vec columns[Groups];
      for (int g = 0; g < Groups; ++g) columns[g] = Vec::loadu(row + g * stride, count);
      for (int r = 0; r < Rows; ++r) {
        const Vec x(a[r * lda + k]);
        for (int g = 0; g < Groups; ++g) local[r][g] = at::vec::fmadd(x, columns[g], local[r][g]);
      }
    }
  }
  for (int r = 0; r < Rows; ++r)
    for (int g = 0; g < Groups; ++g) sums[r][g] = local[r][g];
}

// For rows first .. first+Rows-1 and each column chunk: the block's sums, then
// finish(row, column, count, sums[r]) for each of its rows.
template <int Rows, int Groups, class Finish>
inline void rows_block(const float* a, int64_t lda, int64_t first, const float* w, int64_t ldw, int64_t depth,
                       int64_t columns, int64_t step, int64_t stride, Finish& finish) {
  Vec sums[Rows][Groups];
  for (int64_t column = 0; column < columns; column += step) {
    const int64_t count = std::min<int64_t>(Vec::size(), columns - column);
    block<Rows, Groups>(a + first * lda, lda, w, ldw, depth, column, stride, count, sums);
    for (int r = 0; r < Rows; ++r) finish(first + r, column, count, sums[r]);
  }
}

// The rows left after the full blocks, one instantiation per count.
template <int Rows, int Groups, class Finish>
inline void remainder(int64_t left, const float* a, int64_t lda, int64_t first, const float* w, int64_t ldw,
                      int64_t depth, int64_t columns, int64_t step, int64_t stride, Finish& finish) {
  if constexpr (Rows > 0) {
    if (left == Rows) {
      rows_block<Rows, Groups>(a, lda, first, w, ldw, depth, columns, step, stride, finish);
    } else {
      remainder<Rows - 1, Groups>(left, a, lda, first, w, ldw, depth, columns, step, stride, finish);
    }
  }
}

// a (rows, depth; row stride lda) times w (depth, ...; row stride ldw). The columns come in
// chunks of one vector at column, column + stride, ..., column + (Groups - 1) * stride for column
// = 0, step, 2 step, ... < columns; finish(row, column, count, Vec sums[Groups]) gets each row's
// chunk. Gates: Groups gates of `columns` units each `stride` apart, step one vector. A plain
// product of `columns` columns: stride one vector and step Groups vectors (columns a multiple of
// Groups vectors), or Groups 1.
template <int Groups, class Finish>
void multiply(const float* a, int64_t lda, int64_t rows, const float* w, int64_t ldw, int64_t depth, int64_t columns,
              int64_t step, int64_t stride, Finish finish) {
  constexpr int Rows = block_rows<Groups>();
  int64_t first = 0;
  for (; first + Rows <= rows; first += Rows)
    rows_block<Rows, Groups>(a, lda, first, w, ldw, depth, columns, step, stride, finish);
  remainder<Rows - 1, Groups>(rows - first, a, lda, first, w, ldw, depth, columns, step, stride, finish);
}

// out (rows, columns; row stride ldo) = a (rows, depth) w (depth, columns), plus `addend` (same
// layout as out) when given.
inline void plain(const float* a, int64_t lda, int64_t rows, const float* w, int64_t ldw, int64_t depth,
                  int64_t columns, float* out, int64_t ldo, const float* addend) {
  const int64_t width = Vec::size();
  if (columns % (4 * width) == 0) {
    multiply<4>(a, lda, rows, w, ldw, depth, columns, 4 * width, width,
                [&](int64_t row, int64_t column, int64_t, const Vec* sums) {
                  for (int g = 0; g < 4; ++g) {
                    float* at = out + row * ldo + column + g * width;
                    const Vec value = addend ? sums[g] + Vec::loadu(addend + row * ldo + column + g * width) : sums[g];
                    value.store(at);
                  }
                });
  } else {
    multiply<1>(a, lda, rows, w, ldw, depth, columns, width, 0,
                [&](int64_t row, int64_t column, int64_t count, const Vec* sums) {
                  const Vec value = addend ? sums[0] + Vec::loadu(addend + row * ldo + column, count) : sums[0];
                  value.store(out + row * ldo + column, count);
                });
  }
}

}  // namespace product
