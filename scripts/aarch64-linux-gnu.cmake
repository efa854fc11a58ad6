# aarch64-linux-gnu.cmake - CMake toolchain file: build shardpipe for 64-bit
# Arm boards (Raspberry Pi 4/5, Orange Pi 5) running Debian 12 / Raspberry
# Pi OS bookworm, from an x86-64 Debian 12 machine.
#
# Compiler: Debian's gcc-aarch64-linux-gnu. Libraries: an arm64 sysroot, a
# folder into which the arm64 .debs of libc6-dev, libopenblas-dev,
# libyaml-dev, libmpich12 and libmpich-dev (and their dependencies) are
# unpacked; scripts/cross-aarch64.sh --full makes it. The sysroot is given
# as -DSHARDPIPE_AARCH64_SYSROOT=DIR or in the environment variable of the
# same name:
#   cmake -S . -B build-aarch64-full -DCMAKE_TOOLCHAIN_FILE=scripts/aarch64-linux-gnu.cmake \
#         -DSHARDPIPE_AARCH64_SYSROOT=$PWD/build-aarch64-full/sysroot -DSHARDPIPE_TESTS=OFF
# The tests need Criterion, which the sysroot does not hold: build them off.

set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)

if(NOT SHARDPIPE_AARCH64_SYSROOT AND DEFINED ENV{SHARDPIPE_AARCH64_SYSROOT})
  set(SHARDPIPE_AARCH64_SYSROOT "$ENV{SHARDPIPE_AARCH64_SYSROOT}")
endif()
if(NOT SHARDPIPE_AARCH64_SYSROOT OR NOT EXISTS "${SHARDPIPE_AARCH64_SYSROOT}/usr/include/aarch64-linux-gnu/mpich/mpi.h")
  message(FATAL_ERROR "aarch64-linux-gnu.cmake: SHARDPIPE_AARCH64_SYSROOT='${SHARDPIPE_AARCH64_SYSROOT}' is not an "
    "arm64 sysroot with MPICH, OpenBLAS and libyaml; make one with scripts/cross-aarch64.sh --full and pass "
    "-DSHARDPIPE_AARCH64_SYSROOT=<build dir>/sysroot")
endif()
# try_compile projects re-read this file: hand them the sysroot too.
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES SHARDPIPE_AARCH64_SYSROOT)

set(CMAKE_SYSROOT "${SHARDPIPE_AARCH64_SYSROOT}")
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
# Anything CMake runs for the target goes through user-mode qemu, with the
# sysroot as the prefix for the dynamic loader and the libraries.
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64-static -L "${SHARDPIPE_AARCH64_SYSROOT}")

# pkg-config (libyaml) reads the sysroot's .pc files and prefixes their paths.
set(ENV{PKG_CONFIG_LIBDIR} "${SHARDPIPE_AARCH64_SYSROOT}/usr/lib/aarch64-linux-gnu/pkgconfig:${SHARDPIPE_AARCH64_SYSROOT}/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_SYSROOT_DIR} "${SHARDPIPE_AARCH64_SYSROOT}")

# MPI: FindMPI would ask the host's mpicc, which describes the x86-64
# library. Name the arm64 MPICH directly and skip the wrapper and guessing.
set(MPI_ASSUME_NO_BUILTIN_MPI TRUE)
set(MPI_SKIP_COMPILER_WRAPPER TRUE)
set(MPI_SKIP_GUESSING TRUE)
set(MPI_C_LIB_NAMES mpich CACHE STRING "MPI C libraries to link against")
set(MPI_C_HEADER_DIR "${SHARDPIPE_AARCH64_SYSROOT}/usr/include/aarch64-linux-gnu/mpich" CACHE PATH "mpi.h for aarch64")
set(MPI_mpich_LIBRARY "${SHARDPIPE_AARCH64_SYSROOT}/usr/lib/aarch64-linux-gnu/libmpich.so" CACHE FILEPATH "arm64 MPICH")
