# libfacegate: the umbrella target Facegate::facegate over every installed fg_* library, the
# exported CMake package (find_package(Facegate)) and a pkg-config file (facegate.pc).
# Included at the end of the top-level CMakeLists.txt, after every library was added.
# Each library installs itself and its headers in fg_cc_library (cmake/fg_library.cmake).
include(CMakePackageConfigHelpers)

get_property(fg_libraries GLOBAL PROPERTY FG_INSTALLED_LIBRARIES)

# The CLI executable is called `facegate`, so the umbrella target is fg_facegate, exported and
# aliased under the name users write: Facegate::facegate.
add_library(fg_facegate INTERFACE)
add_library(Facegate::facegate ALIAS fg_facegate)
target_link_libraries(fg_facegate INTERFACE ${fg_libraries})
set_target_properties(fg_facegate PROPERTIES EXPORT_NAME facegate)
install(TARGETS fg_facegate EXPORT FacegateTargets)
if(TARGET facegate)
  install(TARGETS facegate RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()

set(fg_cmake_dir ${CMAKE_INSTALL_LIBDIR}/cmake/Facegate)
install(EXPORT FacegateTargets NAMESPACE Facegate:: DESTINATION ${fg_cmake_dir})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/FacegateConfig.cmake.in
  ${PROJECT_BINARY_DIR}/FacegateConfig.cmake INSTALL_DESTINATION ${fg_cmake_dir})
# 0.x: minor versions may break the API.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/FacegateConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/FacegateConfig.cmake
              ${PROJECT_BINARY_DIR}/FacegateConfigVersion.cmake
        DESTINATION ${fg_cmake_dir})

# pkg-config: static archives, so every dependency goes into Libs/Requires (not .private), and
# each -lfg_x must come before the fg libraries it uses: sort them by their fg:: link deps.
set(fg_pending ${fg_libraries})
set(fg_sorted "")                    # dependencies first
while(fg_pending)
  set(fg_progress FALSE)
  foreach(lib IN LISTS fg_pending)
    get_target_property(deps ${lib} LINK_LIBRARIES)
    set(ready TRUE)
    foreach(dep IN LISTS deps)
      if(dep MATCHES "^fg::(.+)$")
        if(NOT "fg_${CMAKE_MATCH_1}" IN_LIST fg_sorted)   # expanded after the match
          set(ready FALSE)
        endif()
      endif()
    endforeach()
    if(ready)
      list(APPEND fg_sorted ${lib})
      list(REMOVE_ITEM fg_pending ${lib})
      set(fg_progress TRUE)
    endif()
  endforeach()
  if(NOT fg_progress)
    message(FATAL_ERROR "fg libraries with cyclic or unknown fg:: dependencies: ${fg_pending}")
  endif()
endwhile()
set(fg_pc_libs "")
foreach(lib IN LISTS fg_sorted)
  string(PREPEND fg_pc_libs "-l${lib} ")
endforeach()
# Relocatable (cmake --install --prefix anywhere): the prefix is found from the .pc file's place.
file(RELATIVE_PATH fg_pc_to_prefix /p/${CMAKE_INSTALL_LIBDIR}/pkgconfig /p)
configure_file(${PROJECT_SOURCE_DIR}/cmake/facegate.pc.in ${PROJECT_BINARY_DIR}/facegate.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/facegate.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
