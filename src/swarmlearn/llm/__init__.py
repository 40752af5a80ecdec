"""swarmlearn.llm: a client for OpenAI-compatible chat endpoints, batching, JSON replies.

The happy path::

    from swarmlearn.llm import CompletionRequest, HttpLLMClient, LLMClientConfig

    client = HttpLLMClient(LLMClientConfig(base_url=server.base_url))
    reply = client.complete(CompletionRequest.chat("Pick an action.", json_schema=schema))

Tests of worker logic use :class:`ScriptedLLMClient` instead.
"""

from swarmlearn.llm._batch import LLMClient, run_batch
from swarmlearn.llm._client import (
    CallHook,
    HttpLLMClient,
    LLMClientConfig,
    OpenAIClient,
    backoff_delay,
    normalize_base_url,
)
from swarmlearn.llm._fake import ScriptedLLMClient, ScriptedReply, ScriptExhausted
from swarmlearn.llm._json import JsonReply, JsonReplyParser, ReplyStats, schema_problems
from swarmlearn.llm._types import (
    CallRecord,
    Completion,
    CompletionRequest,
    LoraScale,
    Message,
    Role,
    ServerTimings,
)

__all__ = [
    "CallHook",
    "CallRecord",
    "Completion",
    "CompletionRequest",
    "HttpLLMClient",
    "JsonReply",
    "JsonReplyParser",
    "LLMClient",
    "LLMClientConfig",
    "LoraScale",
    "Message",
    "OpenAIClient",
    "ReplyStats",
    "Role",
    "ScriptExhausted",
    "ScriptedLLMClient",
    "ScriptedReply",
    "ServerTimings",
    "backoff_delay",
    "normalize_base_url",
    "run_batch",
    "schema_problems",
]
