"""Neural codecs: the RVQ autoencoder, pretrained-codec adapters and the shared training pipeline.

torch is imported lazily (inside the modules that need it), so `import evalkit` and this
package work without it; the codec backends then report themselves unavailable with
"pip install torch==2.13.0".
"""

from .. import codecs  # noqa: F401  first: the codec registry imports this package's backends
from .bitpack import pack_codes, unpack_codes

__all__ = ["pack_codes", "unpack_codes"]
