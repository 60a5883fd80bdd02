"""The binding's own tests: run with `-p mailbox_ipc.pytest_plugin` (tests/run.sh, ctest's
`python` test) so that they use the fixture as any user's tests would."""
pytest_plugins = ["pytester"]
