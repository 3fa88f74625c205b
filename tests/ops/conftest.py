from tests.channels.conftest import fakes, served, settings  # noqa: F401 (fixtures)
