"""Fixtures every test tier shares: the real local stack (see yixian.localstack)."""

pytest_plugins = ["yixian.localstack.pytest_plugin"]
