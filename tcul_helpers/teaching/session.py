"""One entry point for the notebooks: :class:`LabSession`.

A notebook does ``lab = LabSession(PROFILE)`` and then asks for what it needs; everything is
computed through :mod:`tcul_helpers.experiment.pipeline` on first use (with progress bars) and
reused
from disk afterwards, so the notebooks can be opened in any order::

    lab.cfg                 the resolved configuration (paths made absolute)
    lab.source, lab.target  the datasets (synthetic worlds generated once)
    lab.source_model()      f_theta0 (trained once, cached under runs/)
    lab.run("tcul")         Algorithm 1 for a variant (cached under runs/; fresh=True
                            starts it over)
    lab.start_model(), lab.finetuner(model, t)   step (d) of iteration t, as the kit's run
                            does it, for a loop written in a notebook
    lab.features(model)     L2-normalised target-train features of a model
    lab.truth, lab.camids, lab.frames   per-image arrays of the target training split

Where things live: the kit's home folder is ``$TCUL_HOME`` when set, else the repository
root (the folder holding ``pyproject.toml`` above this package), else the current folder.
Data go to ``<home>/data/generated`` and runs to ``<home>/runs``, wherever the notebook is.
"""

from __future__ import annotations

import os
import weakref
from pathlib import Path
from typing import Any

import numpy as np

from ..data.records import camids_of, frames_of, pids_of
from ..settings.config import Config, get_config
from .notebook_advice import in_notebook_terms

HOME_ENV = "TCUL_HOME"


def kit_home() -> Path:
    """The folder data and runs are resolved against (see the module docstring)."""
    env = os.environ.get(HOME_ENV)
    if env:
        return Path(env).expanduser().resolve()
    repo = Path(__file__).resolve().parents[1]
    if (repo / "pyproject.toml").is_file():
        return repo
    return Path.cwd()


class LabSession:
    """The notebooks' handle on the kit: configuration, data, models and cached runs.

    Args:
        profile: ``smoke`` / ``classroom`` / ``paper`` (default: ``$TCUL_PROFILE`` or
            ``classroom``).
        seed: the run's seed (worlds, k-means, training).
        progress: show progress bars while something is computed.
        home: override :func:`kit_home`.
        **overrides: configuration fields, e.g. ``lambda_fr=50``.
    """

    def __init__(self, profile: str | None = None, seed: int = 0, progress: bool = True,
                 home: str | Path | None = None, **overrides: Any) -> None:
        self.home = Path(home).resolve() if home is not None else kit_home()
        cfg = get_config(profile, seed=seed, **overrides)
        self.cfg: Config = cfg.absolute_roots(self.home)
        self.progress = progress
        self._source = None
        self._target = None
        self._source_model = None
        self._runs: dict[str, Any] = {}
        self._image_cache = None
        # keyed by the model object itself, held weakly: an entry ends with its model (an
        # id() key could be reused by a new model after the old one is collected)
        self._features: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    # ---------------------------------------------------------------- folders
    @property
    def runs_dir(self) -> Path:
        """``<home>/runs``."""
        return self.home / "runs"

    @property
    def root(self) -> Path:
        """``<home>/runs/<profile>/seed<S>``: where this session's runs are cached."""
        from ..experiment.pipeline import run_root

        return run_root(self.cfg, self.runs_dir)

    @property
    def source_dir(self) -> Path:
        """The folder of f_theta0 (:func:`tcul_helpers.experiment.pipeline.source_dir`)."""
        from ..experiment.pipeline import source_dir

        return source_dir(self.cfg, self.runs_dir, self._dataset)

    def _dataset(self, preset: str):
        """The ``source`` or ``target`` dataset of this session (read once)."""
        return self.source if preset == "source" else self.target

    def run_dir(self, variant: str, **overrides: Any) -> Path:
        """The folder of one variant's run with ``overrides``
        (:func:`tcul_helpers.experiment.pipeline.variant_dir`)."""
        from ..experiment.pipeline import variant_config, variant_dir

        return variant_dir(variant_config(self.cfg, variant, **overrides), variant,
                           self.runs_dir, self._dataset)

    def __repr__(self) -> str:
        return (f"LabSession(profile={self.cfg.profile!r}, seed={self.cfg.seed}, "
                f"home={str(self.home)!r})")

    # ---------------------------------------------------------------- data
    @property
    @in_notebook_terms
    def source(self):
        """The labelled source dataset S (generated on first use)."""
        if self._source is None:
            from ..experiment.pipeline import ensure_world

            self._source = ensure_world(self.cfg, "source", progress=self.progress)
        return self._source

    @property
    @in_notebook_terms
    def target(self):
        """The unlabelled target dataset T (generated on first use)."""
        if self._target is None:
            from ..experiment.pipeline import ensure_world

            self._target = ensure_world(self.cfg, "target", progress=self.progress)
        return self._target

    @property
    def truth(self) -> np.ndarray:
        """True identities of the target training images (for measuring only)."""
        return pids_of(self.target.train)

    @property
    def camids(self) -> np.ndarray:
        """Camera of every target training image."""
        return camids_of(self.target.train)

    @property
    def frames(self) -> np.ndarray | None:
        """Frame id of every target training image (``None`` without frame ids)."""
        return frames_of(self.target.train)

    # ---------------------------------------------------------------- models
    @in_notebook_terms
    def source_model(self):
        """f_theta0: trained on the source set once, then loaded from ``runs/``."""
        if self._source_model is None:
            from ..experiment.pipeline import ensure_source_model

            self._source_model = ensure_source_model(
                self.cfg, self.source, self.source_dir, progress=self.progress,
                log=print if self.progress else None)
        return self._source_model

    @in_notebook_terms
    def source_history(self) -> dict:
        """What training f_theta0 recorded per epoch (``epoch``, ``loss``, ``ce``,
        ``triplet``, ``accuracy``, ...); the model is trained first if it is not on disk."""
        from ..infra.atomic_files import read_json_cache

        self.source_model()
        data = read_json_cache(self.source_dir / "source.json") or {}
        return dict(data.get("history") or {})

    @in_notebook_terms
    def start_model(self):
        """A copy of f_theta0 without its classifier: where Algorithm 1's fine-tuning starts."""
        import copy

        return copy.deepcopy(self.source_model()).drop_classifier()

    @in_notebook_terms
    def finetuner(self, model, iteration: int, triplet_loss=None):
        """Step (d) of iteration ``iteration`` of Algorithm 1, as the kit's run does it:
        ``finetune(index, pseudo_labels)`` fine-tunes ``model`` in place on the target
        training images ``index`` with their pseudo-labels (Eq. 4-5: the kit's batch-hard
        triplet loss, or ``triplet_loss(embeddings, labels, margin)`` when given), seeded as
        the kit's iteration ``iteration``, and returns every image's features under the
        fine-tuned model (step (a) of the next iteration). Too few reliable images to fill
        one batch: a warning, and the model is left as it was (as in the kit's run)."""
        import warnings

        from ..experiment.runner import finetune_seed
        from ..infra.device import resolve_device
        from ..training.features import extract_features, prepare_features
        from ..training.image_dataset import resolve_cache
        from ..training.loops import TooFewSamplesError, finetune

        cfg, train = self.cfg, self.target.train
        device = resolve_device(cfg.device)
        if self._image_cache is None:
            self._image_cache = resolve_cache(None, len(train), cfg.height, cfg.width,
                                              cfg.num_workers)

        def finetune_then_extract(index: np.ndarray, pseudo_labels: np.ndarray) -> np.ndarray:
            try:
                finetune(model, [train[i] for i in np.asarray(index)], pseudo_labels, cfg, device,
                         progress=self.progress, image_cache=self._image_cache,
                         seed=finetune_seed(cfg, iteration), triplet_loss=triplet_loss)
            except TooFewSamplesError as exc:
                warnings.warn(f"iteration {iteration}: {exc}", stacklevel=2)
            z = extract_features(model, train, cfg, device, progress=self.progress,
                                 image_cache=self._image_cache)
            return prepare_features(z, cfg.l2_normalize)
        return finetune_then_extract

    @in_notebook_terms
    def features(self, model=None, records=None) -> np.ndarray:
        """Features of ``records`` (default: target train) under ``model`` (default: the
        source model), prepared as the algorithm does (L2-normalised for TCUL / SUL)."""
        from ..infra.device import resolve_device
        from ..training.features import extract_features, prepare_features

        model = self.source_model() if model is None else model
        default = records is None
        if default and model in self._features:
            return self._features[model]
        recs = self.target.train if default else list(records)
        z = extract_features(model, recs, self.cfg, resolve_device(self.cfg.device),
                             progress=self.progress)
        z = prepare_features(z, self.cfg.l2_normalize)
        if default:
            self._features[model] = z
        return z

    # ---------------------------------------------------------------- runs
    @in_notebook_terms
    def run(self, variant: str = "tcul", fresh: bool = False, **overrides: Any):
        """Algorithm 1 for ``variant`` (``tcul`` / ``sul`` / ``pul``): an
        :class:`~tcul_helpers.experiment.runner.AdaptResult` (``.history``, ``.baseline``,
        ``.centers``, ``.model``, ``.run_dir``). Computed once, then resumed from ``runs/``;
        ``fresh=True`` starts it over. ``overrides`` change settings; such a run lives in
        its own folder."""
        from ..experiment.pipeline import run_adaptation, variant_config

        key = variant + "".join(f"-{k}{v}" for k, v in sorted(overrides.items()))
        if fresh or key not in self._runs:
            self._runs[key] = run_adaptation(
                variant_config(self.cfg, variant, **overrides), self.source_model(), self.target,
                self.run_dir(variant, **overrides), restart_on_other_data=True, fresh=fresh,
                progress=self.progress, log=print if self.progress else None)
        return self._runs[key]

    @in_notebook_terms
    def history(self, variant: str = "tcul") -> dict:
        """``history.json`` of a variant's run (the run is computed if missing)."""
        from ..experiment.run_store import load_history

        self.run(variant)
        return load_history(self.run_dir(variant))

    @in_notebook_terms
    def cached_history(self, variant: str = "tcul") -> dict | None:
        """``history.json`` of a *finished* run of ``variant`` in ``runs/``, or ``None`` when
        there is none (nothing is computed: e.g. to gather the seeds a class already ran)."""
        from ..experiment.run_store import HISTORY, load_history

        path = self.run_dir(variant)
        if not (path / HISTORY).is_file():
            return None
        history = load_history(path)
        return history if history.get("status") == "complete" else None

    @in_notebook_terms
    def trace(self, variant: str = "tcul") -> dict[str, np.ndarray]:
        """``trace.npz`` of a variant's run: ``labels_t``, ``kept_t``, ``centers_t``."""
        from ..experiment.run_store import load_trace

        self.run(variant)
        return load_trace(self.run_dir(variant))

    @in_notebook_terms
    def initial_clustering(self) -> dict[str, np.ndarray]:
        """The state at the start of iteration 1: source features, k-means centres (step 2)
        and the Eq. 1-2 labels, as :func:`tcul_helpers.experiment.runner.adapt` computes them."""
        from ..method.assignment import assign_clusters
        from ..method.kmeans import kmeans_init

        z = self.features()
        centers = kmeans_init(z, self.cfg.n_clusters, self.cfg.seed,
                              n_iter=self.cfg.kmeans_iters).astype(np.float32)
        return {"features": z, "centers": centers, "labels": assign_clusters(z, centers)}
