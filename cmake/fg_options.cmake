# All FG_* build options live here.
option(FG_BUILD_TESTS "Build the tests" ${PROJECT_IS_TOP_LEVEL})
option(FG_BUILD_BENCHMARKS "Build Google Benchmark targets" ON)
option(FG_ENABLE_ASAN "Build with AddressSanitizer + UndefinedBehaviorSanitizer" OFF)
option(FG_WERROR "Treat warnings as errors" OFF)

set(FG_SHARED_DIR "${CMAKE_CURRENT_SOURCE_DIR}/../shared" CACHE PATH
    "Shared models and data (read-only); overridden at run time by $FG_SHARED_DIR")

if(FG_ENABLE_ASAN)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()

# ThreadSanitizer (preset "tsan"): the stream, pipeline, events and gallery tests run under it in
# scripts/test. Not combinable with ASan.
option(FG_ENABLE_TSAN "Build with ThreadSanitizer" OFF)
if(FG_ENABLE_TSAN)
  if(FG_ENABLE_ASAN)
    message(FATAL_ERROR "FG_ENABLE_TSAN and FG_ENABLE_ASAN cannot be combined")
  endif()
  add_compile_options(-fsanitize=thread -fno-omit-frame-pointer)
  add_link_options(-fsanitize=thread)
endif()

# libFuzzer harnesses (fg_add_fuzzer, cmake/fg_fuzzing.cmake); needs clang: preset "fuzz".
option(FG_BUILD_FUZZERS "Build the libFuzzer harnesses (clang only)" OFF)
