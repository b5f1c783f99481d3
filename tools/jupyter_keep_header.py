"""A pre-save hook for Jupyter's server: saving a chapter from JupyterLab keeps its header.

Jupytext writes a notebook's metadata back as YAML in the order JupyterLab holds it, and adds the
version of jupytext that wrote it: after Run All and a save, a chapter's header read
``kernelspec: {name, display_name, language}`` and ``jupytext_version: 1.19.6`` where the file
had ``{display_name, language, name}`` and no version, though nothing in it had changed. With
this hook, when the header about to be written means the same as the file's own (the same YAML,
jupytext's version left aside), the file's header is kept, byte for byte. `make lab` sets it
(``--ContentsManager.pre_save_hook``: a setting, so it reaches the contents manager that
jupytext's server extension puts in place), and the venv step names the kernel "Python 3", as
the files do.
"""
from pathlib import Path

import yaml

VERSION = ("jupytext", "text_representation", "jupytext_version")


def split_header(text):
    """(header, rest) of a text notebook whose first line is ``---``; (None, text) otherwise."""
    if not text.startswith("---\n"):
        return None, text
    end = text.find("\n---\n", 3)
    return (None, text) if end < 0 else (text[:end + 5], text[end + 5:])


def meaning(header):
    """The header's YAML, without jupytext's version."""
    data = yaml.safe_load(header[4:-4]) or {}
    *parents, key = VERSION
    node = data
    for name in parents:
        node = node.get(name) if isinstance(node, dict) else None
    if isinstance(node, dict):
        node.pop(key, None)
    return data


def keep_header(model, path, contents_manager, **kwargs):
    """Pre-save hook: a text file's header is kept when it means what the saved file's did."""
    if model.get("type") != "file" or model.get("format") != "text":
        return
    target = Path(contents_manager.root_dir) / path.strip("/")
    if target.suffix != ".md" or not target.is_file():
        return
    old, _ = split_header(target.read_text(encoding="utf-8"))
    new, rest = split_header(model["content"])
    if old and new and old != new and meaning(old) == meaning(new):
        model["content"] = old + rest

