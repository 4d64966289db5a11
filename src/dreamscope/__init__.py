"""dreamscope: look inside image networks by making them dream.

The public API, imported on first use: `import dreamscope` stays quick (no torch yet), so the command line
answers --help at once and sets the thread policy before torch starts its thread pool.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

from . import runtime
from .version import __version__ as __version__

runtime.prepare_environment()  # before torch is imported anywhere

_EXPORTS = {
    "DreamscopeError": "errors",
    "SettingsError": "errors",
    "DEFAULT_MODEL": "models",
    "REGISTRY": "models",
    "LoadedModel": "models",
    "imagenet_labels": "models",
    "list_layers": "models",
    "load_model": "models",
    "resolve_class": "models",
    "wrap_model": "models",
    "Objective": "optvis.objectives",
    "channel": "optvis.objectives",
    "class_logit": "optvis.objectives",
    "direction": "optvis.objectives",
    "diversity": "optvis.objectives",
    "guided": "optvis.objectives",
    "layer_l2": "optvis.objectives",
    "neuron": "optvis.objectives",
    "total_variation": "optvis.objectives",
    "feature_distance": "optvis.objectives",
    "Settings": "settings",
    "DreamSettings": "settings",
    "VisualizeSettings": "settings",
    "ZoomSettings": "settings",
    "MorphSettings": "settings",
    "VideoSettings": "settings",
    "LiveSettings": "settings",
    "ProbeSettings": "settings",
    "ClassifySettings": "settings",
    "ExemplarsSettings": "settings",
    "AtlasSettings": "settings",
    "PatchSettings": "settings",
    "MicroscopeSettings": "settings",
    "ExplainSettings": "settings",
    "Event": "events",
    "Stage": "events",
    "Run": "events",
    "Record": "io.provenance",
    "read_record": "io.provenance:read",
    "save": "io.provenance:save",
    "Job": "work.jobs",
    "run_job": "work.jobs:run",
    "redo": "work.redo",
    "resume_zoom": "work.redo",
    "Prediction": "recipes.classify",
    "classify": "recipes.classify",
    "dream": "recipes.dream",
    "dream_iter": "recipes.dream",
    "visualize": "recipes.visualize",
    "visualize_iter": "recipes.visualize",
    "zoom_iter": "recipes.zoom",
    "morph_iter": "recipes.morph",
    "video_iter": "recipes.video",
    "LiveSession": "recipes.live",
    "LiveDream": "recipes.live",
    "live_iter": "recipes.live",
    "probe": "recipes.probe",
    "probe_iter": "recipes.probe",
    "explain": "recipes.explain",
    "explain_iter": "recipes.explain",
    "ExplainResult": "recipes.explain",
    "atlas": "recipes.atlas",
    "atlas_iter": "recipes.atlas",
    "collect": "recipes.atlas",
    "collect_iter": "recipes.atlas",
    "Collection": "recipes.atlas",
    "patch_experiment": "recipes.patch",
    "patch_iter": "recipes.patch",
    "exemplars": "recipes.exemplars",
    "exemplars_iter": "recipes.exemplars",
    "Exemplar": "recipes.exemplars",
    "microscope": "work.microscope",
    "microscope_iter": "work.microscope",
    "run_batch": "work.batch",
    "folder_jobs": "work.batch",
    "engine_for": "work.batch",
    "LocalEngine": "work.batch",
    "RayEngine": "work.batch",
    "InlineEngine": "work.batch",
    "score": "recipes.quality",
    "judge_for": "recipes.quality",
    "Score": "recipes.quality",
    "colourfulness": "recipes.colour",
    "saturation": "recipes.colour",
    "Accentuation": "recipes.accentuate",
    "set_threads": "runtime:configure",
}

__all__ = sorted(_EXPORTS)

# Modules that moved when the package was split into layers (0.2): their old names still import, as the same
# module, with a DeprecationWarning that says where each went.
MOVED = {
    "render": "optvis.render",
    "objectives": "optvis.objectives",
    "params": "optvis.params",
    "transforms": "optvis.transforms",
    "taps": "optvis.taps",
    "images": "io.images",
    "videos": "io.videos",
    "provenance": "io.provenance",
    "recipes.folder": "io.folders",
    "report": "pages.probe",
    "atlas_report": "pages.atlas",
    "microscope_site": "pages.microscope",
    "jobs": "work.jobs",
    "batch": "work.batch",
    "quality": "recipes.quality",
    "colour": "recipes.colour",
    "flow": "recipes.flow",
}


def __getattr__(name: str):
    if name in MOVED:
        return importlib.import_module(f"{__name__}.{name}")
    if name not in _EXPORTS:
        raise AttributeError(f"module 'dreamscope' has no attribute {name!r}")
    module, _, attribute = _EXPORTS[name].partition(":")
    value = getattr(importlib.import_module(f".{module}", __name__), attribute or name)
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """`import dreamscope.render` (an old name) gives the module at its new place, `dreamscope.optvis.render`."""

    def find_spec(self, fullname, path=None, target=None):
        old = fullname.removeprefix(f"{__name__}.")
        if old == fullname or old not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def __init__(self):
        self._specs = {}

    def create_module(self, spec):
        new = f"{__name__}.{MOVED[spec.name.removeprefix(f'{__name__}.')]}"
        warnings.warn(f"{spec.name} moved to {new}; import it from there", DeprecationWarning, stacklevel=2)
        module = importlib.import_module(new)
        self._specs[spec.name] = module.__spec__  # importlib sets the old name's spec on it: put its own back
        return module

    def exec_module(self, module):
        """The module is loaded already, at its new place."""
        module.__spec__ = self._specs.pop(module.__spec__.name, module.__spec__)


if not any(isinstance(finder, _MovedModules) for finder in sys.meta_path):
    sys.meta_path.append(_MovedModules())
