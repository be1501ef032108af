"""Any OpenAI-compatible chat-completions endpoint, through the official ``openai`` SDK.

Covers OpenAI, Moonshot (Kimi K2.5), vLLM, SGLang, Ollama and anything else that speaks
``/v1/chat/completions`` with tools. Keys are read from environment variables and are
scrubbed from every error message.
"""

from __future__ import annotations

import email.utils
import json
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from parlswarm.models.base import ModelSpecError
from parlswarm.models.resilient import FatalModelError, TransientModelError
from parlswarm.types import AssistantMessage, Message, ModelResponse, ToolCall, ToolChoice, ToolSpec, Usage

ReasoningPolicy = Literal["never", "tool_calls", "always"]


@dataclass(frozen=True)
class Preset:
    """Defaults for a named provider."""

    base_url: str | None
    key_envs: tuple[str, ...]
    reasoning_policy: ReasoningPolicy = "never"
    thinking_style: Literal["none", "moonshot", "chat_template"] = "none"


MOONSHOT = Preset(
    base_url="https://api.moonshot.ai/v1",
    key_envs=("MOONSHOT_API_KEY", "KIMI_API_KEY"),
    # Kimi rejects an assistant tool-call turn without its reasoning_content while thinking.
    reasoning_policy="tool_calls",
    thinking_style="moonshot",
)
OPENAI = Preset(base_url=None, key_envs=("OPENAI_API_KEY",))
# vLLM / SGLang / Ollama: keys are usually not needed; thinking goes through the chat template.
SELF_HOSTED = Preset(base_url=None, key_envs=("OPENAI_API_KEY",), thinking_style="chat_template")


def retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    """The wait a ``Retry-After`` (seconds or HTTP date) or ``retry-after-ms`` header asks for."""
    if not headers:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _scrub(text: str, secret: str | None) -> str:
    if secret:
        text = text.replace(secret, "***")
    return text


@dataclass
class OpenAICompatModel:
    """A chat model behind an OpenAI-compatible endpoint."""

    model: str
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    preset: Preset = OPENAI
    thinking: bool | None = None  # None: the endpoint's default
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    timeout: float = 600.0
    max_retries: int = 2
    extra_body: dict[str, Any] = field(default_factory=dict)
    name: str = ""

    def __post_init__(self) -> None:
        if not self.name:
            self.name = self.model
        if self.base_url is None:
            self.base_url = self.preset.base_url
        if self.api_key is None:
            self.api_key = next((os.environ[e] for e in self.preset.key_envs if os.environ.get(e)), None)
        if self.api_key is None:
            if self.preset.base_url is not None or self.base_url is None:
                # A hosted provider: a key is required.
                raise ModelSpecError(
                    f"model '{self.model}': no API key; set {' or '.join(self.preset.key_envs)}"
                )
            self.api_key = "EMPTY"  # self-hosted servers (vLLM, Ollama) accept any key
        import openai  # here, not at module level: it costs ~0.4 s, which every CLI command would pay

        self._client = openai.AsyncOpenAI(
            api_key=self.api_key, base_url=self.base_url, timeout=self.timeout, max_retries=self.max_retries
        )

    def _message_payload(self, m: Message) -> dict[str, Any]:
        data = m.model_dump(exclude_none=True)
        if m.role == "assistant":
            policy = self.preset.reasoning_policy
            keep = policy == "always" or (policy == "tool_calls" and bool(m.tool_calls))
            if not keep:
                data.pop("reasoning_content", None)
            elif "reasoning_content" not in data and self.thinking is not False and m.tool_calls:
                data["reasoning_content"] = ""  # present, as the API demands, even when empty
            if m.content is None and not m.tool_calls:
                data["content"] = ""
        return data

    def _body(self) -> dict[str, Any]:
        body = dict(self.extra_body)
        if self.thinking is not None:
            if self.preset.thinking_style == "moonshot":
                body["thinking"] = {"type": "enabled" if self.thinking else "disabled"}
            elif self.preset.thinking_style == "chat_template":
                body.setdefault("chat_template_kwargs", {})["thinking"] = self.thinking
        return body

    async def complete(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec], *, tool_choice: ToolChoice = "auto"
    ) -> ModelResponse:
        import openai  # loaded by __post_init__ already

        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": [self._message_payload(m) for m in messages],
        }
        if tools:
            kwargs["tools"] = [t.openai() for t in tools]
            if tool_choice != "auto":  # sent only when asked, for servers that do not know the field
                kwargs["tool_choice"] = tool_choice
        for key in ("temperature", "top_p", "max_tokens"):
            value = getattr(self, key)
            if value is not None:
                kwargs[key] = value
        body = self._body()
        if body:
            kwargs["extra_body"] = body
        # Transient failures (429, 5xx, timeouts, resets, garbled bodies) raise
        # TransientModelError for a ResilientModel to retry; the rest raise FatalModelError.
        try:
            response = await self._client.chat.completions.create(**kwargs)
        except (openai.AuthenticationError, openai.PermissionDeniedError):
            raise FatalModelError(
                f"model '{self.model}' at {self.base_url or 'api.openai.com'}: authentication failed; "
                f"check {' or '.join(self.preset.key_envs)}"
            ) from None
        except openai.NotFoundError as exc:
            raise FatalModelError(
                f"model '{self.model}' at {self.base_url or 'api.openai.com'}: not found "
                f"({_scrub(str(exc), self.api_key)})"
            ) from None
        except openai.APITimeoutError:
            raise TransientModelError(
                f"model '{self.model}': endpoint {self.base_url} did not answer in time", reason="timeout"
            ) from None
        except openai.APIConnectionError:
            raise TransientModelError(
                f"model '{self.model}': cannot reach endpoint {self.base_url}", reason="connection"
            ) from None
        except openai.APIStatusError as exc:
            message = f"model '{self.model}': endpoint answered HTTP {exc.status_code}: {_scrub(str(exc), self.api_key)}"
            status = exc.status_code
            if status == 429 or status >= 500 or status in (408, 409):
                raise TransientModelError(
                    message,
                    reason="rate_limit" if status == 429 else "server_error",
                    retry_after=retry_after_seconds(exc.response.headers),
                ) from None
            raise FatalModelError(message) from None
        except (json.JSONDecodeError, openai.APIResponseValidationError) as exc:
            raise TransientModelError(
                f"model '{self.model}': endpoint sent a malformed response ({type(exc).__name__}: {exc})",
                reason="bad_response",
            ) from None
        if not response.choices:
            raise TransientModelError(f"model '{self.model}': endpoint returned no choices", reason="bad_response")
        choice = response.choices[0]
        msg = choice.message
        calls = [
            ToolCall.make(c.id, c.function.name, c.function.arguments or "")
            for c in msg.tool_calls or []
            if getattr(c, "function", None) is not None
        ]
        reasoning = getattr(msg, "reasoning_content", None)
        if reasoning is None and msg.model_extra:
            reasoning = msg.model_extra.get("reasoning_content")
        usage = Usage()
        if response.usage is not None:
            details = response.usage.prompt_tokens_details
            usage = Usage(
                prompt_tokens=response.usage.prompt_tokens or 0,
                completion_tokens=response.usage.completion_tokens or 0,
                cached_tokens=(details.cached_tokens or 0) if details else 0,
            )
        return ModelResponse(
            message=AssistantMessage(content=msg.content, tool_calls=calls or None, reasoning_content=reasoning),
            usage=usage,
            model=response.model or self.model,
            finish_reason=choice.finish_reason,
        )

    def use_own_retries(self) -> None:
        """Turn the SDK's retries off: a :class:`ResilientModel` around this one retries instead."""
        self.max_retries = 0
        self._client = self._client.with_options(max_retries=0)

    async def aclose(self) -> None:
        await self._client.close()
