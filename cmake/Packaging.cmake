# Packaging.cmake - what `cmake --install` puts where, and the .deb CPack
# makes of it (scripts/package.sh builds one; tests/package/ installs and
# checks it). Configure with -DCMAKE_INSTALL_PREFIX=/usr for a package: the
# unit and the manual pages name the paths of this configuration.
include(GNUInstallDirs)

set(TC_ENV_FILE ${CMAKE_INSTALL_FULL_SYSCONFDIR}/default/tracecode)

install(TARGETS tracesvc tracectl tracekeys RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

# The manual pages, written by the programs from their option tables.
if(NOT CMAKE_CROSSCOMPILING)
  set(man_pages "")
  foreach(page tracesvc.8 tracectl.1 tracekeys.1)
    string(REGEX REPLACE "\\.[0-9]$" "" prog ${page})
    string(REGEX REPLACE "^.*\\." "" section ${page})
    set(out ${CMAKE_BINARY_DIR}/man/${page}.gz)
    add_custom_command(OUTPUT ${out}
      COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_BINARY_DIR}/man
      COMMAND ${CMAKE_COMMAND} -DPROG=$<TARGET_FILE:${prog}> -DOUT=${out}
              -P ${CMAKE_SOURCE_DIR}/cmake/man.cmake
      DEPENDS ${prog} ${CMAKE_SOURCE_DIR}/cmake/man.cmake
      COMMENT "man: ${page}")
    list(APPEND man_pages ${out})
    install(FILES ${out} DESTINATION ${CMAKE_INSTALL_MANDIR}/man${section})
  endforeach()
  add_custom_target(man ALL DEPENDS ${man_pages})
endif()

# The systemd unit (sandboxed; runs as the tracecode user) and the
# environment file it reads (a conffile: an upgrade keeps the operator's).
configure_file(${CMAKE_SOURCE_DIR}/packaging/tracesvc.service.in
               ${CMAKE_BINARY_DIR}/packaging/tracesvc.service @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/packaging/tracesvc.service
        DESTINATION ${CMAKE_INSTALL_PREFIX}/lib/systemd/system)
install(FILES ${CMAKE_SOURCE_DIR}/packaging/tracecode.default
        DESTINATION ${CMAKE_INSTALL_FULL_SYSCONFDIR}/default RENAME tracecode)

# The contract and what a caller or an operator reads: the proto files
# under share/tracecode, the examples and the operators' files under doc.
install(DIRECTORY ${CMAKE_SOURCE_DIR}/proto/tracecode
        DESTINATION ${CMAKE_INSTALL_DATADIR}/tracecode/proto FILES_MATCHING PATTERN "*.proto")
install(FILES ${CMAKE_SOURCE_DIR}/proto/released/tracecode-v1.json
        DESTINATION ${CMAKE_INSTALL_DATADIR}/tracecode/proto/released)
install(DIRECTORY ${CMAKE_SOURCE_DIR}/examples/ DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples
        PATTERN "node_modules" EXCLUDE)
install(FILES ${CMAKE_SOURCE_DIR}/README.md ${CMAKE_SOURCE_DIR}/docs/OPERATIONS.md
              ${CMAKE_SOURCE_DIR}/docs/SCANS.md ${CMAKE_SOURCE_DIR}/docs/AUDIT.md
        DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(DIRECTORY ${CMAKE_SOURCE_DIR}/docs/ops/ DESTINATION ${CMAKE_INSTALL_DOCDIR}/ops)

# The .deb: runtime dependencies from the binaries (dpkg-shlibdeps), the
# maintainer scripts that make the user and the directories, stripped.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME tracecode)
set(CPACK_PACKAGE_VENDOR tracecode)
set(CPACK_PACKAGE_CONTACT "tracecode maintainers <maintainers@tracecode.invalid>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "signed product trace codes: issue, verify at scale, delist on certificate change")
set(CPACK_PACKAGE_DESCRIPTION
    "tracesvc issues signed trace codes to licensed manufacturers, verifies them for
e-commerce platforms, keeps certificate status in Redis and pushes delisting
notices when a certificate is suspended or revoked. tracectl calls it;
tracekeys manages its keyring.")
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "passwd")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "redis-server")
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "https://tracecode.invalid/")
foreach(f postinst prerm postrm conffiles)
  configure_file(${CMAKE_SOURCE_DIR}/packaging/deb/${f}.in ${CMAKE_BINARY_DIR}/packaging/deb/${f} @ONLY)
  list(APPEND CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA ${CMAKE_BINARY_DIR}/packaging/deb/${f})
endforeach()
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
