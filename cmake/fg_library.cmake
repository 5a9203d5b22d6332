# fg_cc_library(NAME <name> SRCS ... DEPS ... [PRIVATE_DEPS ...])
# Builds fg_<name> with the standard flags and the alias fg::<name>; public headers live in
# <folder>/include/fg/<name>/.
function(fg_cc_library)
  cmake_parse_arguments(ARG "" "NAME" "SRCS;DEPS;PRIVATE_DEPS" ${ARGN})
  set(target fg_${ARG_NAME})
  add_library(${target} ${ARG_SRCS})
  add_library(fg::${ARG_NAME} ALIAS ${target})
  target_include_directories(${target} PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/include
                                       PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src)
  target_link_libraries(${target} PUBLIC ${ARG_DEPS} PRIVATE ${ARG_PRIVATE_DEPS})
  fg_apply_warnings(${target})
endfunction()

function(fg_apply_warnings target)
  # Designated initialisers that leave fields at their defaults are our config idiom.
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wno-missing-field-initializers)
  if(FG_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()
