// Tensor math, as torch's tensor ops: elementwise arithmetic with NumPy broadcasting and dtype
// promotion, comparisons, unary functions, reductions over dims, matmul, joining and indexing.
// Every op on float32 tensors is differentiable; int64 and bool tensors never need gradients.
//
// Dtypes: an op on two operands computes in the later of their dtypes (bool < int64 < float32),
// so int64 + float32 is float32; `div` always gives float32 (true division), comparisons give
// bool. A C++ or Python scalar joins as a 0-d tensor of its own kind (scalar_tensor).
#pragma once

#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "tinytorch/tensor.hpp"

namespace tinytorch {

// A 0-d tensor holding `value` as `dtype`.
Tensor scalar_tensor(double value, DType dtype = DType::Float32);

// --- elementwise, broadcasting -------------------------------------------------------------------
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);  // DTypeError for two bool tensors, as in PyTorch
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);           // true division: float32
Tensor floor_divide(const Tensor& a, const Tensor& b);  // rounds toward -inf (Python's //)
Tensor remainder(const Tensor& a, const Tensor& b);     // the sign of b (Python's %)
// a ** b; for int64 a negative exponent is a DTypeError (PyTorch refuses it too).
Tensor pow(const Tensor& a, const Tensor& b);
Tensor maximum(const Tensor& a, const Tensor& b);  // NaN if either is NaN
Tensor minimum(const Tensor& a, const Tensor& b);
Tensor scale(const Tensor& a, float factor);  // a * factor, one pass
// Comparisons give bool.
Tensor eq(const Tensor& a, const Tensor& b);
Tensor ne(const Tensor& a, const Tensor& b);
Tensor lt(const Tensor& a, const Tensor& b);
Tensor le(const Tensor& a, const Tensor& b);
Tensor gt(const Tensor& a, const Tensor& b);
Tensor ge(const Tensor& a, const Tensor& b);
// On bool tensors, logical; on int64, bitwise (Python's & | ^ ~).
Tensor bitwise_and(const Tensor& a, const Tensor& b);
Tensor bitwise_or(const Tensor& a, const Tensor& b);
Tensor bitwise_xor(const Tensor& a, const Tensor& b);
Tensor bitwise_not(const Tensor& a);
// cond ? a : b, elementwise; cond is bool, all three broadcast.
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);

// --- unary -------------------------------------------------------------------------------------
Tensor neg(const Tensor& a);
Tensor abs(const Tensor& a);
Tensor exp(const Tensor& a);  // float32 result for any dtype (so are log, sqrt, tanh, sigmoid)
Tensor log(const Tensor& a);
Tensor sqrt(const Tensor& a);
Tensor tanh(const Tensor& a);
Tensor sigmoid(const Tensor& a);
Tensor erf(const Tensor& a);
// Limits values to [min, max] (either may be absent); the gradient passes where min <= a <= max.
Tensor clamp(const Tensor& a, std::optional<double> min, std::optional<double> max);
Tensor clone(const Tensor& a);  // a contiguous copy; differentiable (Tensor::clone is not)

// --- reductions over dims ------------------------------------------------------------------------
// dims: the dims to reduce (negative counts from the end); empty reduces all. keepdim leaves
// them as size 1. sum of bool or int64 is int64; mean needs float32.
Tensor sum(const Tensor& a);   // all elements: shape ()
Tensor mean(const Tensor& a);  // all elements: shape ()
Tensor sum(const Tensor& a, const std::vector<int64_t>& dims, bool keepdim = false);
Tensor mean(const Tensor& a, const std::vector<int64_t>& dims, bool keepdim = false);
Tensor amax(const Tensor& a, const std::vector<int64_t>& dims, bool keepdim = false);
Tensor amin(const Tensor& a, const std::vector<int64_t>& dims, bool keepdim = false);
// Values and int64 indices of the largest (smallest) element along dim; the first one on ties.
std::pair<Tensor, Tensor> max(const Tensor& a, int64_t dim, bool keepdim = false);
std::pair<Tensor, Tensor> min(const Tensor& a, int64_t dim, bool keepdim = false);
// The index of the largest (smallest) element along dim, or in the flattened tensor (no dim).
Tensor argmax(const Tensor& a, std::optional<int64_t> dim = std::nullopt, bool keepdim = false);
Tensor argmin(const Tensor& a, std::optional<int64_t> dim = std::nullopt, bool keepdim = false);
Tensor softmax(const Tensor& a, int64_t dim);
Tensor log_softmax(const Tensor& a, int64_t dim);
// The gradient of a broadcast: sums g over the dims that `shape` broadcast along.
Tensor sum_to(const Tensor& g, const Shape& shape);

// --- linear algebra ------------------------------------------------------------------------------
// numpy.matmul's rules: 1-D operands are promoted and the added dim removed, leading dims
// broadcast. float32 runs OpenBLAS sgemm; int64 plain loops.
Tensor matmul(const Tensor& a, const Tensor& b);

// --- joining and indexing ------------------------------------------------------------------------
Tensor cat(const std::vector<Tensor>& tensors, int64_t dim = 0);
Tensor stack(const std::vector<Tensor>& tensors, int64_t dim = 0);
// Advanced indexing, as PyTorch's: indices[d] (int64, or undefined for "all of dim d") index the
// leading dims; the defined ones broadcast together. Their result dims take the place of the
// first indexed dim when the indexed dims are adjacent, and come first otherwise (NumPy's rule).
Tensor index(const Tensor& a, const std::vector<Tensor>& indices);
// a[indices] = values (broadcast), or += with accumulate (repeated indices then add up). Not
// recorded by autograd.
void index_put_(Tensor& a, const std::vector<Tensor>& indices, const Tensor& values, bool accumulate = false);
// The int64 coordinates of the nonzero (true) elements, one [count] tensor per dim.
std::vector<Tensor> nonzero(const Tensor& a);

}  // namespace tinytorch
