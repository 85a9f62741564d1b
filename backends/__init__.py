"""Model backends: one protocol, an embedded llama.cpp engine, and an OpenAI-compatible client."""

from myninja.backends.base import Backend, ChatRequest, ChatResult, Chunk, ToolCall, Usage

__all__ = ["Backend", "ChatRequest", "ChatResult", "Chunk", "ToolCall", "Usage"]
