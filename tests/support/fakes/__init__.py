"""In-process fakes of external services (WeChat's servers are unreachable from tests)."""
