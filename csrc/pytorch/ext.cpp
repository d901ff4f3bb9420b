// The extension module mmdice._ext. Importing it loads this library, whose
// static registrations define the `mmdice` operator library: this file claims
// the namespace (the one TORCH_LIBRARY(mmdice, ...)); each op adds its schemas
// and kernels from its own <op>_register.cpp (TORCH_LIBRARY_FRAGMENT and
// TORCH_LIBRARY_IMPL). The module itself exposes no functions.
#include <Python.h>
#include <torch/library.h>

TORCH_LIBRARY(mmdice, m) {}

extern "C" PyObject* PyInit__ext(void) {
  static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_ext", nullptr, -1, nullptr};
  return PyModule_Create(&module_def);
}
