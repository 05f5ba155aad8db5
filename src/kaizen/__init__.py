"""kaizen-cl: continual learning of image models.

``kaizen.run(config, out_dir)`` trains a continual sequence and returns a :class:`Result`;
``RunConfig`` is the typed configuration it takes (or a preset name, a YAML path, a dict).
``kaizen.update(run_dir, data)`` trains one more task from newly arrived data, and
``kaizen.load_model(path)`` reads a saved model for ``predict`` and ``features``.
"""

from kaizen.api import run
from kaizen.config import RunConfig
from kaizen.eval.results import Result
from kaizen.production.predict import load_model
from kaizen.production.update import update
from kaizen.version import __version__

__all__ = ["Result", "RunConfig", "__version__", "load_model", "run", "update"]
