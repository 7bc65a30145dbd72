"""The shared fixtures live in tests/support/fixtures.py; this registers them for every test folder."""

pytest_plugins = ["tests.support.fixtures"]
