"""swarmlearn.serving: run a llama.cpp server in a supervised child process, or attach to one.

The happy path::

    from swarmlearn.serving import LlamaServer

    with LlamaServer() as server:          # bundled SmolLM2-135M, free port on 127.0.0.1
        client = HttpLLMClient(LLMClientConfig(base_url=server.base_url))
        ...

``xllamacpp`` (the ``llm`` extra) is needed only by the child process; this
package imports without it.
"""

from swarmlearn.serving._admin import LlamaAdmin
from swarmlearn.serving._external import ExternalServer, ExternalServerConfig
from swarmlearn.serving._lora import check_lora
from swarmlearn.serving._model import check_gguf, default_model_path
from swarmlearn.serving._records import (
    Health,
    InferenceServer,
    LoraAdapter,
    ServerMetrics,
    SupportsLora,
)
from swarmlearn.serving._server import LlamaServer, LlamaServerConfig

__all__ = [
    "ExternalServer",
    "ExternalServerConfig",
    "Health",
    "InferenceServer",
    "LlamaAdmin",
    "LlamaServer",
    "LlamaServerConfig",
    "LoraAdapter",
    "ServerMetrics",
    "SupportsLora",
    "check_gguf",
    "check_lora",
    "default_model_path",
]
