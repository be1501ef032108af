"""parlswarm: Agent Swarm and PARL, open and model-agnostic."""

from parlswarm.agent import Agent
from parlswarm.swarm import RunResult, Swarm
from parlswarm.tools import Tool, ToolContext, ToolError, Toolset, tool
from parlswarm.types import AgentResult, Budgets, RunSummary

__all__ = [
    "Agent",
    "AgentResult",
    "Budgets",
    "RunResult",
    "RunSummary",
    "Swarm",
    "Tool",
    "ToolContext",
    "ToolError",
    "Toolset",
    "tool",
]
__version__ = "0.1.0"
