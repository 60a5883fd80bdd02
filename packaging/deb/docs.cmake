# What Debian's policy asks of each binary package besides its files: a copyright file in
# the machine-readable format and a compressed changelog, in /usr/share/doc/PACKAGE.
# Made at configure time from LICENSE and CHANGELOG.md; included by deb.cmake when
# MBX_DEB_DOCS is on (packaging/build-deb.sh turns it on).

# copyright: LICENSE's text as the Expat license's paragraph (blank lines become " .").
file(STRINGS ${PROJECT_SOURCE_DIR}/LICENSE mbx_license_lines)
set(mbx_license "")
set(mbx_license_holder "")
foreach(line IN LISTS mbx_license_lines)
  if(line MATCHES "^Copyright \\(c\\) (.*)$")
    set(mbx_license_holder "${CMAKE_MATCH_1}")
  elseif(line STREQUAL "" OR line STREQUAL "MIT License")
    if(NOT mbx_license STREQUAL "")
      string(APPEND mbx_license " .\n")
    endif()
  else()
    string(APPEND mbx_license " ${line}\n")
  endif()
endforeach()
string(REGEX REPLACE "( \\.\n)+$" "" mbx_license "${mbx_license}")
string(REGEX REPLACE "^( \\.\n)+" "" mbx_license "${mbx_license}")
set(mbx_copyright "${CMAKE_CURRENT_BINARY_DIR}/deb/copyright")
file(WRITE ${mbx_copyright}
     "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n"
     "Upstream-Name: mailbox\n\n"
     "Files: *\n"
     "Copyright: ${mbx_license_holder}\n"
     "License: Expat\n"
     "${mbx_license}")

# changelog: one entry for this version, dated as CHANGELOG.md dates it (the day of the
# configure for an unreleased version), pointing at CHANGELOG.md for what changed.
file(STRINGS ${PROJECT_SOURCE_DIR}/CHANGELOG.md mbx_release
     REGEX "^## ${PROJECT_VERSION} - [0-9]+-[0-9]+-[0-9]+$")
if(mbx_release MATCHES "([0-9]+-[0-9]+-[0-9]+)$")
  set(mbx_release_day "${CMAKE_MATCH_1}")
else()
  string(TIMESTAMP mbx_release_day "%Y-%m-%d" UTC)
endif()
execute_process(COMMAND date -u -R -d "${mbx_release_day} 00:00:00"
                OUTPUT_VARIABLE mbx_release_date OUTPUT_STRIP_TRAILING_WHITESPACE
                COMMAND_ERROR_IS_FATAL ANY)
set(mbx_changelog "${CMAKE_CURRENT_BINARY_DIR}/deb/changelog")
file(WRITE ${mbx_changelog}
     "mailbox (${PROJECT_VERSION}) unstable; urgency=medium\n\n"
     "  * Version ${PROJECT_VERSION}: what changed is in CHANGELOG.md of the source.\n\n"
     " -- ${CPACK_PACKAGE_CONTACT}  ${mbx_release_date}\n")
execute_process(COMMAND gzip -9 -n -f -k ${mbx_changelog} COMMAND_ERROR_IS_FATAL ANY)

install(FILES ${mbx_copyright} ${mbx_changelog}.gz DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/mailbox
        COMPONENT runtime)
install(FILES ${mbx_copyright} ${mbx_changelog}.gz
        DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/mailbox-dev COMPONENT dev)
if(TARGET mailbox-bridge)
  install(FILES ${mbx_copyright} ${mbx_changelog}.gz
          DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/mailbox-bridge COMPONENT bridge)
endif()
