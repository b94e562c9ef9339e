// The Python module lets_core._C. Importing it runs the TORCH_LIBRARY_IMPL registrations of the
// kernels linked into it; its only function reports how it was built, so lets_core.info can say
// which torch, CUDA and architectures the kernels target.
#include <torch/extension.h>

#include "lets_core.h"

#ifndef LETS_CORE_TORCH_VERSION
#define LETS_CORE_TORCH_VERSION "unknown"
#endif
#ifndef LETS_CORE_CUDA_VERSION
#define LETS_CORE_CUDA_VERSION ""
#endif
#ifndef LETS_CORE_CUDA_ARCHS
#define LETS_CORE_CUDA_ARCHS ""
#endif
#ifndef LETS_CORE_BUILD_TOOL
#define LETS_CORE_BUILD_TOOL "unknown"
#endif

namespace {

pybind11::dict build_info() {
  pybind11::dict info;
  info["torch_version"] = LETS_CORE_TORCH_VERSION;
#ifdef LETS_CORE_WITH_CUDA
  info["with_cuda"] = true;
#else
  info["with_cuda"] = false;
#endif
  info["cuda_version"] = LETS_CORE_CUDA_VERSION;
  info["cuda_archs"] = LETS_CORE_CUDA_ARCHS;
  info["build_tool"] = LETS_CORE_BUILD_TOOL;
  info["cxx_standard"] = static_cast<long>(__cplusplus);
  pybind11::dict kernels;
  for (const auto& [key, op] : lets_core::recorded_kernels()) {
    if (!kernels.contains(key)) kernels[key.c_str()] = pybind11::list();
    kernels[key.c_str()].cast<pybind11::list>().append(op);
  }
  info["kernels"] = kernels;
  return info;
}

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "Compiled CPU/CUDA kernels of the lets_core ops (registered on import).";
  m.def("build_info", &build_info, "How this library was built: torch/CUDA versions, archs, kernels.");
}
