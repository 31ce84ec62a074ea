# The optional CUDA backend (TAPEGRAD_CUDA=ON): tapegrad::cuda, a static library of the kernels in
# include/tapegrad/backend/cuda/*.cu (compiled by nvcc; they never include Eigen) that links CUDA::cudart
# and CUDA::cublas. Host code includes <tapegrad/backend/cuda.hpp> and links tapegrad::cuda; nothing of it
# reaches a CPU-only build. Installed and exported with the package (CMakeLists.txt): a consumer calls
# find_package(tapegrad) and links tapegrad::cuda; the package config then finds the CUDA toolkit itself. GPU architectures: CMAKE_CUDA_ARCHITECTURES, default 90 (H100/H200); e.g.
# -DCMAKE_CUDA_ARCHITECTURES="80;90" for A100 as well.
set(TAPEGRAD_WITH_CUDA OFF)
if(NOT TAPEGRAD_CUDA)
  return()
endif()
if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
  set(CMAKE_CUDA_ARCHITECTURES 90)
endif()
if(NOT CMAKE_CUDA_COMPILER AND EXISTS /usr/local/cuda/bin/nvcc)
  set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
endif()
enable_language(CUDA)
find_package(CUDAToolkit REQUIRED)

file(GLOB TAPEGRAD_CUDA_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/include/tapegrad/backend/cuda/*.cu)
add_library(tapegrad_cuda STATIC ${TAPEGRAD_CUDA_SOURCES})
add_library(tapegrad::cuda ALIAS tapegrad_cuda)
set_target_properties(tapegrad_cuda PROPERTIES EXPORT_NAME cuda POSITION_INDEPENDENT_CODE ON)
# C++20 for nvcc by flag: CMake 3.25 does not know the CUDA20 dialect of nvcc 13 (CUDA_STANDARD 20 fails).
target_compile_options(tapegrad_cuda PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:-std=c++20>)
target_include_directories(tapegrad_cuda PUBLIC $<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}/include>
                                                $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
target_link_libraries(tapegrad_cuda PUBLIC tapegrad CUDA::cudart CUDA::cublas)
target_compile_definitions(tapegrad_cuda INTERFACE TAPEGRAD_WITH_CUDA=1)
# Our kernels are warnings-clean; the host compiler sees only our own code (no Eigen).
target_compile_options(tapegrad_cuda PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Wall,-Wextra>
                                             $<$<AND:$<COMPILE_LANGUAGE:CUDA>,$<BOOL:${TAPEGRAD_WERROR}>>:-Werror=all-warnings>)
message(STATUS "tapegrad: CUDA backend (tapegrad::cuda) with nvcc ${CMAKE_CUDA_COMPILER_VERSION}, "
               "architectures ${CMAKE_CUDA_ARCHITECTURES}")
set(TAPEGRAD_WITH_CUDA ON)
