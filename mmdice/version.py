"""Version of mmdice and the oldest torch it runs with.

Read without importing mmdice by setup.py; ``requirements/runtime.txt``
states the same floor (tests/test_version.py checks that they agree).
"""
import re

__version__ = '0.1.0'

#: torch.library.register_fake / register_autograd and the autocast queries by
#: device type appeared in torch 2.4; tested with torch 2.14.1.
MIN_TORCH_VERSION = (2, 4)
TORCH_REQUIREMENT = 'torch>={}.{}'.format(*MIN_TORCH_VERSION)


def torch_version_supported(version: str) -> bool:
    """Whether torch ``version`` (e.g. '2.14.1+cpu') is at least MIN_TORCH_VERSION."""
    match = re.match(r'(\d+)\.(\d+)', version)
    return match is not None and tuple(int(part) for part in match.groups()) >= MIN_TORCH_VERSION
