"""Storage test fixtures."""
import pytest


@pytest.fixture
def store(db_url):
    from storage import Store
    s = Store(db_url)
    yield s
    s.close()
