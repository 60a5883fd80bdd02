# Debian packages with CPack (packaging/build-deb.sh builds them):
#   mailbox      the broker, mbx, libmailbox.so.0, man pages, the systemd unit and its user,
#                bash completion, the Python package mailbox_ipc
#   mailbox-dev  mailbox.h, libmailbox.a, the .so link, CMake and pkg-config files,
#                libmailbox(3)
#   mailbox-bridge  mailbox-bridge, its man page, unit and bash completion (component
#                `bridge`), when the build has the bridge (bridge/ found libnats): a
#                package of its own, so that a host without NATS needs no libnats
# Configure with -DCMAKE_INSTALL_PREFIX=/usr: the unit and the recorded paths are those
# of the configured prefix.
set(CPACK_PACKAGE_NAME mailbox)
set(CPACK_PACKAGE_VENDOR "The mailbox authors")
# The maintainer is whoever builds the packages, named as Debian's own tools name them
# (DEBFULLNAME, DEBEMAIL); without them, a placeholder that lintian reports
# (tests/packaging/check_deb.sh tells it so).
if(DEFINED ENV{DEBEMAIL} AND NOT "$ENV{DEBEMAIL}" STREQUAL "")
  set(mbx_maintainer_name "The mailbox authors")
  if(DEFINED ENV{DEBFULLNAME} AND NOT "$ENV{DEBFULLNAME}" STREQUAL "")
    set(mbx_maintainer_name "$ENV{DEBFULLNAME}")
  endif()
  set(CPACK_PACKAGE_CONTACT "${mbx_maintainer_name} <$ENV{DEBEMAIL}>")
else()
  set(CPACK_PACKAGE_CONTACT "The mailbox authors <mailbox@localhost>")
endif()
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_RESOURCE_FILE_LICENSE ${PROJECT_SOURCE_DIR}/LICENSE)
set(CPACK_GENERATOR DEB)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL runtime dev)
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
set(CPACK_STRIP_FILES ON) # the packages carry stripped programs and library
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
# shlibs: programs built against libmailbox.so.0 depend on mailbox (>= this version).
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS_POLICY ">=")
set(CPACK_DEBIAN_RUNTIME_PACKAGE_NAME mailbox)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_SECTION net)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_DEPENDS "libc6 (>= 2.36), libcjson1 (>= 1.7.15)")
set(CPACK_DEBIAN_RUNTIME_PACKAGE_RECOMMENDS "python3, bash-completion")
# Each description's first line is its package's synopsis (cpack_options.cmake clears
# the package-wide summary, so CPack prepends none).
set(CPACK_PROJECT_CONFIG_FILE ${CMAKE_CURRENT_LIST_DIR}/deb/cpack_options.cmake)
set(CPACK_DEBIAN_RUNTIME_DESCRIPTION
    "messaging broker for processes on one machine
mailboxd gives each client of a namespace a mailbox in shared memory;
clients post small JSON messages straight into each other's mailboxes.
Includes mbx, the shell tool, libmailbox, a systemd unit
(mailboxd@NAMESPACE) and the Python package mailbox_ipc.")
# triggers: ldconfig runs after the library is installed or removed.
set(CPACK_DEBIAN_RUNTIME_PACKAGE_CONTROL_EXTRA
    ${CMAKE_CURRENT_LIST_DIR}/deb/postinst ${CMAKE_CURRENT_LIST_DIR}/deb/postrm
    ${CMAKE_CURRENT_LIST_DIR}/deb/triggers)
set(CPACK_DEBIAN_DEV_PACKAGE_NAME mailbox-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS "mailbox (= ${PROJECT_VERSION})")
set(CPACK_DEBIAN_DEV_DESCRIPTION
    "development files of mailbox
The header, the static library, and the CMake and pkg-config files to
build programs against libmailbox.")
if(TARGET mailbox-bridge)
  list(APPEND CPACK_COMPONENTS_ALL bridge)
  set(CPACK_DEBIAN_BRIDGE_PACKAGE_NAME mailbox-bridge)
  set(CPACK_DEBIAN_BRIDGE_PACKAGE_SECTION net)
  # The broker and library it must match (the segment's layout), and libnats as its
  # shlibs file says (libc6 as for mailbox). The NATS servers may run elsewhere: only
  # suggested.
  set(CPACK_DEBIAN_BRIDGE_PACKAGE_DEPENDS
      "mailbox (= ${PROJECT_VERSION}), libc6 (>= 2.36), libnats3.4 (>= 3.4.1)")
  set(CPACK_DEBIAN_BRIDGE_PACKAGE_SUGGESTS "nats-server")
  set(CPACK_DEBIAN_BRIDGE_DESCRIPTION
      "joins a mailbox namespace on several hosts over NATS
mailbox-bridge makes one namespace of the namespaces of the same name
on several hosts, through NATS servers: names and topics served on one
host are reached from the others. Includes a systemd unit
(mailbox-bridge@NAMESPACE).")
  # systemd told of the unit as it comes and goes.
  set(CPACK_DEBIAN_BRIDGE_PACKAGE_CONTROL_EXTRA
      ${CMAKE_CURRENT_LIST_DIR}/deb/bridge/postinst ${CMAKE_CURRENT_LIST_DIR}/deb/bridge/postrm)
endif()
option(MBX_DEB_DOCS "Install the copyright and changelog files of the Debian packages" OFF)
if(MBX_DEB_DOCS)
  include(${CMAKE_CURRENT_LIST_DIR}/deb/docs.cmake)
endif()
include(CPack)
