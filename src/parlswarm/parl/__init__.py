"""PARL: Parallel-Agent Reinforcement Learning of the orchestrator (rewards, rollouts, GRPO) and its supervised warm start."""
