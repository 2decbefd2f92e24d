"""The web layer: a FastAPI application that receives CRM webhooks (and, later, serves rep
pages, CRM cards and the usage API). Handlers are thin: they call the same engines the CLI
and the scheduler call.

::

    from stagelink.web import create_app

    with open_storage(config) as storage:
        uvicorn.run(create_app(config, storage))
"""

from stagelink.web.app import create_app
from stagelink.web.deps import WebState

__all__ = ["WebState", "create_app"]
