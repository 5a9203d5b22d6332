include(GNUInstallDirs)

# fg_cc_library(NAME <name> SRCS ... DEPS ... [PRIVATE_DEPS ...] [NO_INSTALL])
# Builds fg_<name> with the standard flags and the alias fg::<name>; public headers live in
# <folder>/include/fg/<name>/. Unless NO_INSTALL (test helpers), the library and its headers are
# installed and exported as Facegate::<name>, and the library becomes part of Facegate::facegate
# (cmake/fg_install.cmake), so a new library is installable without further CMake.
function(fg_cc_library)
  cmake_parse_arguments(ARG "NO_INSTALL" "NAME" "SRCS;DEPS;PRIVATE_DEPS" ${ARGN})
  set(target fg_${ARG_NAME})
  add_library(${target} ${ARG_SRCS})
  add_library(fg::${ARG_NAME} ALIAS ${target})
  # Installed headers sit under <prefix>/include/fg/<name>/, so one include dir serves them all.
  target_include_directories(${target} PUBLIC $<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}/include>
                                              $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>
                                       PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src)
  target_link_libraries(${target} PUBLIC ${ARG_DEPS} PRIVATE ${ARG_PRIVATE_DEPS})
  fg_apply_warnings(${target})
  if(NOT ARG_NO_INSTALL)
    set_target_properties(${target} PROPERTIES EXPORT_NAME ${ARG_NAME})
    install(TARGETS ${target} EXPORT FacegateTargets
            ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
            LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
    install(DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}/include/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
            FILES_MATCHING PATTERN "*.h")
    set_property(GLOBAL APPEND PROPERTY FG_INSTALLED_LIBRARIES ${target})
  endif()
endfunction()

function(fg_apply_warnings target)
  # Designated initialisers that leave fields at their defaults are our config idiom.
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wno-missing-field-initializers)
  if(FG_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()
