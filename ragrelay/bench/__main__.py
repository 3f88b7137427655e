"""``python -m ragrelay.bench`` runs the ``bench`` group on its own (settings from env)."""

from bus.logging import configure_logging
from bus.settings import load_settings
from ragrelay.cli.bench import bench

settings = load_settings()
configure_logging("WARNING", json=settings.log_json)
bench(obj=settings)
