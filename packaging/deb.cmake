# Debian packages with CPack (packaging/build-deb.sh builds them):
#   mailbox      the broker, mbx, libmailbox.so.0, man pages, the systemd unit and its user,
#                bash completion, the Python package mailbox_ipc
#   mailbox-dev  mailbox.h, libmailbox.a, the .so link, CMake and pkg-config files,
#                libmailbox(3)
# Configure with -DCMAKE_INSTALL_PREFIX=/usr: the unit and the recorded paths are those
# of the configured prefix.
set(CPACK_PACKAGE_NAME mailbox)
set(CPACK_PACKAGE_VENDOR "The mailbox authors")
set(CPACK_PACKAGE_CONTACT "The mailbox authors <mailbox@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "${PROJECT_DESCRIPTION}")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_RESOURCE_FILE_LICENSE ${PROJECT_SOURCE_DIR}/LICENSE)
set(CPACK_GENERATOR DEB)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL runtime dev)
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_NAME mailbox)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_SECTION net)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_DEPENDS "libc6 (>= 2.36), libcjson1 (>= 1.7.15)")
set(CPACK_DEBIAN_RUNTIME_PACKAGE_RECOMMENDS "python3, bash-completion")
set(CPACK_DEBIAN_RUNTIME_DESCRIPTION
    "messaging broker for processes on one machine\n mailboxd gives each client of a namespace a mailbox in shared memory; clients\n post small JSON messages straight into each other's mailboxes. Includes mbx, the\n shell tool, libmailbox, a systemd unit (mailboxd@NAMESPACE) and the Python\n package mailbox_ipc.")
set(CPACK_DEBIAN_RUNTIME_PACKAGE_CONTROL_EXTRA
    ${CMAKE_CURRENT_LIST_DIR}/deb/postinst ${CMAKE_CURRENT_LIST_DIR}/deb/postrm)
set(CPACK_DEBIAN_DEV_PACKAGE_NAME mailbox-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS "mailbox (= ${PROJECT_VERSION})")
set(CPACK_DEBIAN_DEV_DESCRIPTION
    "development files of mailbox\n The header, the static library, and the CMake and pkg-config files to build\n programs against libmailbox.")
include(CPack)
