"""Model weights shipped with parlswarm: ``nano/`` is ``--model builtin``; any other folder
``NAME/`` is ``--model builtin:NAME``.

Each folder is what a training run saved (a Hugging Face ``save_pretrained`` folder, or a LoRA
adapter whose base is itself a shipped or packaged model) plus ``parlswarm.json`` (how
:class:`~parlswarm.models.local.LocalModel` runs it) and ``manifest.json`` (the config, data
seeds, git commit and evaluation figures that produced it). ``parlswarm train ship`` puts a
run's ``final/`` folder here (:mod:`parlswarm.models.ship`).
"""
