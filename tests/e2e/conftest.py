import pytest

from tests.e2e.gateway import run_gateway


@pytest.fixture(scope="session")
def gateway(tmp_path_factory):
    db = tmp_path_factory.mktemp("gw") / "sluicegate.db"
    with run_gateway(f"sqlite:///{db}") as running:
        yield running


@pytest.fixture(scope="session")
def key(gateway) -> dict:
    return gateway.create_key(
        user_id="alice", team="search", project="platform-search", name="alice-laptop"
    )
