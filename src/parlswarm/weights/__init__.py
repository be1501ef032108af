"""Model weights shipped with parlswarm: ``nano/`` is the built-in model (``--model builtin``).

Each folder is a Hugging Face ``save_pretrained`` folder plus ``parlswarm.json`` (how
:class:`~parlswarm.models.local.LocalModel` runs it) and ``manifest.json`` (the config, data
seeds, git commit and evaluation figures that produced it).
"""
