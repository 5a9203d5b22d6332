# fg_add_test(NAME <name> SOURCES ... DEPS ... [LABELS ...])
# One gtest binary per library (fg_<lib>_unit style); tests are discovered so ctest can run them
# in parallel and filter by label (unit, model, data).
function(fg_add_test)
  cmake_parse_arguments(ARG "" "NAME" "SOURCES;DEPS;LABELS" ${ARGN})
  add_executable(${ARG_NAME} ${ARG_SOURCES})
  target_link_libraries(${ARG_NAME} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gtest_main)
  fg_apply_warnings(${ARG_NAME})
  if(NOT ARG_LABELS)
    set(ARG_LABELS unit)
  endif()
  gtest_discover_tests(${ARG_NAME} PROPERTIES LABELS "${ARG_LABELS}" DISCOVERY_TIMEOUT 60)
  # fg_unit_tests builds every binary with a "unit" label and nothing else: the sanitizer stages of
  # scripts/test build only what `ctest -L unit` runs.
  if("unit" IN_LIST ARG_LABELS)
    if(NOT TARGET fg_unit_tests)
      add_custom_target(fg_unit_tests)
    endif()
    add_dependencies(fg_unit_tests ${ARG_NAME})
  endif()
endfunction()
include(GoogleTest)
