"""Model backends behind one protocol."""

from parlswarm.models.base import Model, ModelError, ModelSpecError
from parlswarm.models.openai_compat import OpenAICompatModel
from parlswarm.models.registry import ModelOptions, load_model, register
from parlswarm.models.scripted import ScriptedModel, calls_reply, tool_reply

__all__ = [
    "Model",
    "ModelError",
    "ModelOptions",
    "ModelSpecError",
    "OpenAICompatModel",
    "ScriptedModel",
    "calls_reply",
    "load_model",
    "register",
    "tool_reply",
]
