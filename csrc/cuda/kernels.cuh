// Launchers of the CUDA kernels. They take raw pointers, sizes and a stream, so the .cu files
// need no torch/extension.h (nor Tensor), which keeps nvcc builds short; csrc/cuda/ops_cuda.cpp
// turns tensors into these arguments.
#pragma once

#include <c10/core/ScalarType.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace lets_core::cuda {

// dst[b, r, :] = src[b, r, :] for (batch, rows, cols) blocks whose last dimension is dense.
void copy_block(const void* src, int64_t src_sb, int64_t src_sr, void* dst, int64_t dst_sb, int64_t dst_sr,
                int64_t batch, int64_t rows, int64_t cols, int64_t elem_size, cudaStream_t stream);

// out[r, j] = sum_m coeff[r, c(j), m] * stack[(r / per_group) * s + m, j] over (rows, m_total),
// coeff (rows, chunks, s) in the accumulation type (double for double, float otherwise).
void group_mix(c10::ScalarType dtype, const void* stack, const void* coeff, void* out, int64_t rows,
               int64_t m_total, int64_t chunks, int64_t s, int64_t per_group, cudaStream_t stream);

// scores[u] = sum of |x| (p = 1) or x^2 (p = 2) over the `len` contiguous elements of unit u,
// in the accumulation type.
void unit_scores(c10::ScalarType dtype, const void* matrix, int64_t mats, int64_t units, int64_t len, int p,
                 void* scores, cudaStream_t stream);

// dst[i, :] = src[idx[i], :] for k units of `bytes` bytes each.
void gather_units(const void* src, const int64_t* idx, void* dst, int64_t k, int64_t bytes, cudaStream_t stream);

}  // namespace lets_core::cuda
