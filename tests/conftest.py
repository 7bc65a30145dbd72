"""The shared fixtures live in tests/support/; this registers them for every test folder."""

pytest_plugins = ["tests.support.fixtures", "tests.support.app", "tests.support.fake_wechat",
                  "tests.support.browser"]
