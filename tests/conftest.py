"""Fixtures of the whole suite."""
import logging
import sys

import pytest


@pytest.fixture(autouse=True)
def mmengine_loggers_on_open_streams():
    """Reset the console handlers of mmengine's loggers before each test.

    An ``MMLogger`` lives for the whole session (mmengine keeps every instance)
    and its console handler keeps the ``sys.stdout`` of the moment it was
    created: pytest's capture stream of an earlier test, closed since. Logging
    to it then prints ``--- Logging error ---`` tracebacks on stderr, which
    breaks tests that read stderr, depending on which tests ran before. Each
    such handler is pointed at the current ``sys.stdout``.
    """
    logging_module = sys.modules.get('mmengine.logging')
    if logging_module is not None:
        for logger in logging_module.MMLogger._instance_dict.values():
            for handler in logger.handlers:
                if type(handler) is logging.StreamHandler and \
                        getattr(handler.stream, 'closed', False):
                    handler.stream = sys.stdout  # setStream would flush the closed one
    yield
