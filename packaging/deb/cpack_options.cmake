# Read by cpack for each package (CPACK_PROJECT_CONFIG_FILE): no package-wide summary,
# so that each package's description keeps its own first line as its synopsis (CPack
# would otherwise put the project's summary in front of it).
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "")
