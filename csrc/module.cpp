// The Python module lets_core._C. Importing it runs the TORCH_LIBRARY_IMPL registrations of the
// kernels linked into it (each op's csrc/ops/cpu/<op>_kernel.cpp and csrc/ops/cuda/<op>_kernel.cu
// registers itself); its only function reports how it was built, so lets_core.info can say which
// torch, CUDA and architectures the kernels target.
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/extension.h>

#include <algorithm>
#include <string>
#include <vector>

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

// The lets_core ops that have a kernel for `key` ("CPU", "CUDA"), asked of the dispatcher (as
// lets_core._extension.op_kernels does per op), sorted.
std::vector<std::string> ops_with_kernel(c10::DispatchKey key) {
  const std::string prefix = "lets_core::";
  std::vector<std::string> ops;
  for (const auto& name : c10::Dispatcher::singleton().getRegistrationsForDispatchKey(key)) {
    if (name.name.rfind(prefix, 0) == 0) ops.push_back(name.name.substr(prefix.size()));
  }
  std::sort(ops.begin(), ops.end());
  return ops;
}

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
  pybind11::dict kernels;  // dispatch key -> ops with a kernel for it
  for (const auto key : {c10::DispatchKey::CPU, c10::DispatchKey::CUDA}) {
    pybind11::list ops;
    for (const auto& op : ops_with_kernel(key)) ops.append(op);
    if (!ops.empty()) kernels[c10::toString(key)] = ops;
  }
  info["kernels"] = kernels;
  return info;
}

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "Compiled CPU/CUDA kernels of the lets_core ops (registered on import).";
  m.def("build_info", &build_info, "How this library was built: torch/CUDA versions, archs, kernels.");
}
