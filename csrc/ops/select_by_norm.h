// select_by_norm(matrix, unit, k, p, largest): the k units (`unit` consecutive rows each) of a
// matrix, or of a stack of matrices sharing row indices, with the largest or smallest Lp norm,
// and their indices in ascending order. The schema is in lets_core/ops/select_by_norm.py; the kernels
// (cpu/select_by_norm_kernel.cpp, cuda/select_by_norm_kernel.cu) score the units and gather them.
#pragma once

#include <ATen/ATen.h>

#include "../common/checks.h"

namespace lets_core {

// Checks the arguments of select_by_norm (the twin of check_select_by_norm in lets_core/ops/select_by_norm.py).
void check_select_by_norm(const at::Tensor& matrix, int64_t unit, int64_t k, int64_t p);

// The indices (k,) of the chosen units in ascending order, from every unit's score: a stable sort
// keeps the lower index first on ties, as the reference does.
at::Tensor chosen_units(const at::Tensor& scores, int64_t k, bool largest);

// The uninitialised selection: `matrix`'s shape with k * unit rows.
at::Tensor selection_output(const at::Tensor& matrix, int64_t unit, int64_t k);

}  // namespace lets_core
