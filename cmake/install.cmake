include(GNUInstallDirs)
include(CMakePackageConfigHelpers)
install(TARGETS vtl EXPORT vtlTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(DIRECTORY include/vtl DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY data/ DESTINATION ${CMAKE_INSTALL_DATADIR}/vtl)
install(EXPORT vtlTargets NAMESPACE vtl:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/vtl)
configure_package_config_file(cmake/vtlConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/vtlConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/vtl)
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/vtlConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/vtlConfig.cmake
              ${CMAKE_CURRENT_BINARY_DIR}/vtlConfigVersion.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/vtl)
if(TARGET vtl-cli)
  install(TARGETS vtl-cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()
