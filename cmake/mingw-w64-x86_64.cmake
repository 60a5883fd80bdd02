# Cross-compiling for 64-bit Windows with Debian's mingw-w64 (gcc-mingw-w64-x86-64-win32).
# Tests run under Wine: ctest starts every test executable through the emulator below.
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR x86_64)

set(MBX_MINGW_PREFIX x86_64-w64-mingw32)
set(CMAKE_C_COMPILER ${MBX_MINGW_PREFIX}-gcc)
set(CMAKE_RC_COMPILER ${MBX_MINGW_PREFIX}-windres)

# MBX_WINDOWS_DEPS: where tests/windows/deps.sh installed cJSON and cmocka for Windows.
set(CMAKE_FIND_ROOT_PATH /usr/${MBX_MINGW_PREFIX} ${MBX_WINDOWS_DEPS})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

find_program(MBX_WINE wine)
if(MBX_WINE)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${MBX_WINE})
endif()
