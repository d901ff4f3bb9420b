"""Compiler flags of mmdice's C++ builds: ``mmdice._ext`` (``setup.py``, which
reads this file without importing mmdice) and the OpenVINO extension
(:mod:`mmdice.ops.openvino`). Both compile the CPU kernels of ``csrc/common``,
so that those compile the same way in both. Plain tuples of strings only."""

#: C++ flags of both builds: optimisation and the OpenMP SIMD pragmas of
#: ``csrc/common/cpu`` (no OpenMP runtime). The language standard is each
#: build's own: torch's cpp_extension sets its own, the OpenVINO one C++17 as
#: the wheel's CMake package (``cxx_std_17``).
KERNEL_CXX_FLAGS = ('-O3', '-fopenmp-simd')

#: ``mmdice._ext`` also runs OpenMP (the threads of ATen's parallel loops); it
#: compiles and links with the runtime.
EXT_CXX_FLAGS = KERNEL_CXX_FLAGS + ('-fopenmp', )
EXT_LINK_FLAGS = ('-fopenmp', )

#: nvcc flags of the CUDA kernels of ``mmdice._ext``.
EXT_NVCC_FLAGS = ('-O3', '--use_fast_math', '-lineinfo')

#: The OpenVINO extension runs on OpenVINO's threads (TBB): a shared library
#: with the threading the wheel's CMake package (``OpenVINOTargets.cmake``) defines.
OPENVINO_CXX_FLAGS = KERNEL_CXX_FLAGS + ('-std=c++17', '-shared', '-fPIC',
                                         '-DOV_THREAD=OV_THREAD_TBB_ADAPTIVE')
