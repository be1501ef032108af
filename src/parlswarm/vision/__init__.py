"""Coding with vision: images in messages, a headless browser, visual similarity, ui2code.

Needs the ``vision`` extra (Pillow, scikit-image, Playwright) and a Chromium binary
(Debian's ``/usr/bin/chromium`` by default; set ``PARLSWARM_CHROMIUM`` to use another).
Modules: :mod:`.images` (image parts, the run's image registry), :mod:`.messages`
(images in tool results for endpoints that refuse them), :mod:`.browser` (one shared
Chromium per process), :mod:`.metrics` (Design2Code's model-free metrics plus SSIM),
:mod:`.degrade` (damaged copies of a page, to check the metrics), :mod:`.tools` (the
``vision`` tool set), :mod:`.frames` (key frames of recordings), :mod:`.ui2code`
(screenshot → web page with sub-agents per region), :mod:`.scripted` (a scripted
multimodal policy for it), :mod:`.bench` (the offline benchmark). See docs/vision.md.
"""

from parlswarm.vision.images import ImageRegistry, image_part, to_data_url, to_pil, user_content

__all__ = ["ImageRegistry", "image_part", "to_data_url", "to_pil", "user_content"]
