"""kaizen-cl: continual learning of image models.

``kaizen.run(config, out_dir)`` trains a continual sequence and returns a :class:`Result`;
``RunConfig`` is the typed configuration it takes (or a preset name, a YAML path, a dict).
"""

__version__ = "0.1.0"

from kaizen.api import run
from kaizen.config import RunConfig
from kaizen.results import Result

__all__ = ["Result", "RunConfig", "__version__", "run"]
