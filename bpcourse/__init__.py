"""bpcourse: the course machinery around bplib.

- ``check``: the learner's ``check("task", f)`` and ``progress()`` in the exercise notebooks;
- ``grade``: release student copies and grade a folder of submissions (``python -m
  bpcourse.grade``), with ``kernel`` (kernels with limits, over Unix sockets) beneath it;
- ``labs``: the numbers behind the book's labs; ``widgets`` and ``lab.js`` draw them.
- ``notebook``: ``setup()``, the first call of every chapter (figures as reproducible SVG).

``bplib`` is what the chapters teach; nothing in it imports this package.
"""
