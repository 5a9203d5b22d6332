# fg_add_fuzzer(NAME <name> SOURCES ... DEPS ... [CORPUS <dir>])
# A libFuzzer harness (clang, preset "fuzz": FG_BUILD_FUZZERS=ON, the libraries built with
# -fsanitize=fuzzer-no-link,address,undefined). The harness defines LLVMFuzzerTestOneInput and
# links -fsanitize=fuzzer. CORPUS is the committed seed corpus scripts/fuzz starts from; every
# harness is listed in <build>/fuzzers/ and the target fg_fuzzers builds them all.
function(fg_add_fuzzer)
  cmake_parse_arguments(ARG "" "NAME;CORPUS" "SOURCES;DEPS" ${ARGN})
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "fg_add_fuzzer(${ARG_NAME}): libFuzzer needs clang (use the 'asan' preset)")
  endif()
  add_executable(${ARG_NAME} ${ARG_SOURCES})
  target_link_libraries(${ARG_NAME} PRIVATE ${ARG_DEPS})
  target_compile_options(${ARG_NAME} PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_options(${ARG_NAME} PRIVATE -fsanitize=fuzzer,address,undefined)
  fg_apply_warnings(${ARG_NAME})
  if(NOT TARGET fg_fuzzers)
    add_custom_target(fg_fuzzers)
  endif()
  add_dependencies(fg_fuzzers ${ARG_NAME})
  # scripts/fuzz runs every build/asan/fuzzers/*.txt: "<binary>=<seed corpus dir>".
  file(GENERATE OUTPUT ${PROJECT_BINARY_DIR}/fuzzers/${ARG_NAME}.txt
       CONTENT "$<TARGET_FILE:${ARG_NAME}>=${ARG_CORPUS}\n")
endfunction()
