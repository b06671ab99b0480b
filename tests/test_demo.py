"""The demo (tcul_helpers.experiment.demo), its report (tcul_helpers.experiment.report) and the
sweeps cache."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

from tcul_helpers.experiment.demo import FIGURE_FILES, run_demo  # noqa: E402
from tcul_helpers.experiment.report import PAPER_TABLE2, claims, write_report  # noqa: E402
from tcul_helpers.experiment.sweeps import load_sweeps, run_sweeps, sweep_plan  # noqa: E402
from tcul_helpers.infra.errors import TCULError  # noqa: E402
from tcul_helpers.settings.config import get_config  # noqa: E402

CORE_FIGURES = ("fig2", "fig3", "fig5", "iterations")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    cfg = get_config("smoke", source_root=str(root / "src"), target_root=str(root / "tgt"))
    lines: list[str] = []
    results = run_demo(cfg, root / "demo", progress=False, log=lines.append,
                       sweeps_dir=root / "sweeps")
    return cfg, root, results, lines


def test_demo_writes_report_results_and_figures(demo):
    cfg, root, results, lines = demo
    out = root / "demo"
    assert lines[-1] == f"Report: {out / 'report.md'}"
    for name in ("source", "target"):  # each world's summary is printed
        line = next(x for x in lines if x.startswith(f"{name} world: "))
        summary = results["worlds"][name]
        assert f"{summary['train']['ids']} train ids" in line and "cameras" in line
        assert f"gallery {summary['gallery']['images']}" in line and "time span" in line
    for key in CORE_FIGURES:
        assert (out / FIGURE_FILES[key]).stat().st_size > 1000
    data = json.loads((out / "results.json").read_text())
    for method in ("baseline", "pul", "sul", "tcul"):
        assert {"rank1", "rank5", "mAP"} <= set(data["methods"][method])
    for variant in ("tcul", "sul", "pul"):
        assert len(data["histories"][variant]["iterations"]) == cfg.n_iter
        pairs = data["camera_pairs"][variant]
        assert [r["iteration"] for r in pairs] == list(range(1, cfg.n_iter + 1))
        for r, h in zip(pairs, data["histories"][variant]["iterations"], strict=True):
            # the split adds up to the run's own pairwise precision of the kept labels
            same, cross = r["pairs_same_camera"], r["pairs_cross_camera"]
            if same + cross and h["precision"] is not None:
                right = (same * (r["precision_same_camera"] or 0)
                         + cross * (r["precision_cross_camera"] or 0))
                assert right / (same + cross) == pytest.approx(h["precision"])
    assert data["seed"] == cfg.seed and data["config"]["profile"] == "smoke"
    assert set(data["stage_seconds"]) >= {"worlds", "source model", "baseline", "tcul", "sul",
                                          "pul", "fig4 sweeps", "figures", "report"}
    assert data["sweeps"]["status"] == {"lambda_fr": 2, "n_clusters": 2}
    report = (out / "report.md").read_text()
    assert "| TCUL |" in report and "| PUL-style |" in report
    assert "quoted from the paper" in report
    for key in CORE_FIGURES:
        assert f"]({FIGURE_FILES[key]})" in report
    assert "Which of the paper's claims hold here" in report
    assert "inside one camera or across cameras" in report
    last = data["camera_pairs"]["tcul"][-1]["true_pairs_cross_camera"]
    assert "in the last iteration: SUL" in report and f"TCUL {last:.0f}." in report
    assert "NOT COMPUTED" not in report  # the demo's Fig. 4 grid decides the sweep claims
    for key in ("fig4a", "fig4b"):
        assert f"]({FIGURE_FILES[key]})" in report
    tcul_map = f"{data['methods']['tcul']['mAP']:.1f}"
    assert tcul_map in report  # numbers come from the run


def test_a_report_written_elsewhere_reuses_the_runs_under_runs(demo):
    """`demo --out X --runs R`: the runs are cached under R, not beside X."""
    cfg, root, first, _ = demo
    again = run_demo(cfg, root / "elsewhere" / "demo", progress=False, log=None,
                     sweeps_dir=root / "sweeps", runs=root)
    for stage in ("source model", "tcul", "sul", "pul"):  # the baseline is the report's
        assert again["stages"][stage]["reused"], stage
    assert again["methods"] == first["methods"]
    assert not (root / "elsewhere" / "smoke").exists()


def test_second_demo_call_reuses_everything(demo):
    cfg, root, first, _ = demo
    lines: list[str] = []
    again = run_demo(cfg, root / "demo", progress=False, log=lines.append,
                     sweeps_dir=root / "sweeps")
    for stage in ("source model", "baseline", "tcul", "sul", "pul", "fig4 sweeps"):
        assert again["stages"][stage]["reused"], stage
        assert again["stages"][stage]["seconds"] < 2.0, stage
    assert again["methods"] == first["methods"]
    assert lines[-1].startswith("Report: ")


def test_sweeps_cache_and_demo_sweep_figures(demo):
    demo_cfg, root, _, _ = demo
    cfg = demo_cfg.replace(n_iter=1)  # one iteration per point keeps the test fast
    sweeps_dir = root / "sweeps-n_iter1"
    assert load_sweeps(sweeps_dir) == {}
    log: list[str] = []
    res = run_sweeps(cfg, sweeps_dir, progress=False, only=["lambda_fr"], log=log.append,
                     source_dir=root / "demo" / "source")
    points = res["lambda_fr"]
    assert len(points) == 2 and not any(p["cached"] for p in points)
    files = sorted((sweeps_dir / "lambda_fr").glob("*.json"))
    assert len(files) == 2
    point = json.loads(files[0].read_text())
    assert {"rank1", "rank5", "mAP", "n_reliable", "precision", "value", "variant", "seed",
            "seconds"} <= set(point)
    assert len(point["n_reliable"]) == cfg.n_iter
    mtimes = [f.stat().st_mtime_ns for f in files]
    again = run_sweeps(cfg, sweeps_dir, progress=False, only=["lambda_fr"], log=log.append,
                       source_dir=root / "demo" / "source")
    assert all(p["cached"] for p in again["lambda_fr"])
    assert [f.stat().st_mtime_ns for f in files] == mtimes
    loaded = load_sweeps(sweeps_dir)
    assert list(loaded) == ["lambda_fr"] and len(loaded["lambda_fr"]) == 2
    # a demo with other settings does not draw these points ...
    run_demo(demo_cfg, root / "demo0", progress=False, log=None, sweeps_dir=sweeps_dir,
             runs=root, fig4=False)
    assert not (root / "demo0" / FIGURE_FILES["fig4a"]).exists()
    # ... the demo with the sweeps' settings draws Fig. 4a and evaluates the lambda_fr claim
    lines: list[str] = []
    run_demo(cfg, root / "demo1", progress=False, log=lines.append, sweeps_dir=sweeps_dir,
             fig4=False)
    assert (root / "demo1" / FIGURE_FILES["fig4a"]).exists()
    report = (root / "demo1" / "report.md").read_text()
    assert f"]({FIGURE_FILES['fig4a']})" in report
    assert "no lambda_fr sweep cached" not in report  # the lambda_fr claim is decided
    assert "no n_clusters sweep cached" in report


def test_the_demo_computes_its_fig4_grid_and_shares_the_tcul_run(demo):
    """The demo's Fig. 4 stage computes each point of its grid as a real adaptation run, once,
    into the sweeps cache; the point at the default settings is the demo's TCUL run itself."""
    cfg, root, results, lines = demo
    computed = [x for x in lines if x.startswith(("lambda_fr tcul", "n_clusters tcul"))]
    points = {(p["sweep"], p["value"]): p for name in ("lambda_fr", "n_clusters")
              for p in results["sweeps"]["points"][name]}
    assert len(points) == 4
    shared = [p for p in points.values() if "run_dir" in p]
    assert [(p["sweep"], p["value"]) for p in shared] == [("n_clusters", cfg.n_clusters)]
    run = json.loads((Path(shared[0]["run_dir"]) / "history.json").read_text())
    assert shared[0]["mAP"] == run["iterations"][-1]["mAP"] == results["methods"]["tcul"]["mAP"]
    assert len(computed) == 3  # the other three points: one adaptation run each
    for p in points.values():
        assert len(p["n_reliable"]) == cfg.n_iter and p["mAP"] is not None


def test_the_lambda_fr_and_k_points_at_the_default_settings_are_one_run(demo, monkeypatch):
    """lambda_fr at its default and K at its default are both TCUL with the default
    settings: the sweeps compute that run once and cache it as both points, also when one
    of the two was cached by an earlier call."""
    from tcul_helpers.experiment import sweeps

    demo_cfg, root, _, _ = demo
    cfg = demo_cfg.replace(n_iter=1)
    full_plan = sweeps.sweep_plan

    def own_values_only(cfg_, target, grid="full"):
        plan = full_plan(cfg_, target, grid)
        plan["lambda_fr"]["values"] = [cfg_.lambda_fr]
        plan["n_clusters"]["values"] = [cfg_.n_clusters]
        return plan

    monkeypatch.setattr(sweeps, "sweep_plan", own_values_only)
    out, log = root / "sweeps-own", []

    def computed() -> list[str]:
        return [x for x in log if x.startswith(("lambda_fr tcul", "n_clusters tcul"))]

    res = run_sweeps(cfg, out, progress=False, only=["lambda_fr", "n_clusters"],
                     log=log.append, source_dir=root / "demo" / "source")
    assert len(computed()) == 1
    lam, k = res["lambda_fr"][0], res["n_clusters"][0]
    assert (k["sweep"], k["value"], k["same_run_as"]) == ("n_clusters", cfg.n_clusters,
                                                          "lambda_fr")
    assert k["mAP"] == lam["mAP"] and k["n_reliable"] == lam["n_reliable"]
    k_file = sweeps.point_path(out, "n_clusters", "tcul", cfg.n_clusters)
    assert json.loads(k_file.read_text())["key"] == sweeps.point_key(cfg, "n_clusters",
                                                                     cfg.n_clusters)
    k_file.unlink()  # a later call for K alone reads the cached lambda_fr point
    again = run_sweeps(cfg, out, progress=False, only=["n_clusters"], log=log.append,
                       source_dir=root / "demo" / "source")
    assert len(computed()) == 1 and again["n_clusters"][0]["mAP"] == lam["mAP"]
    assert {name: len(p) for name, p in load_sweeps(out, cfg).items()} == {
        "lambda_fr": 1, "n_clusters": 1}


def test_the_demo_grid_is_part_of_the_full_grid():
    from tcul_helpers.data.records import ReidDataset

    class Target(ReidDataset):
        num_train_pids = 200

        def __init__(self):
            self.train = [None] * 3000

    cfg = get_config("classroom")
    full, demo_grid = sweep_plan(cfg, Target()), sweep_plan(cfg, Target(), grid="demo")
    assert set(demo_grid) == {"lambda_fr", "n_clusters"}
    for name, spec in demo_grid.items():
        assert set(spec["values"]) <= set(full[name]["values"]), name
        below = [v for v in spec["values"] if v < spec["true_value"]]
        above = [v for v in spec["values"] if v > spec["true_value"]]
        assert below and above and spec["true_value"] in spec["values"], name
    assert demo_grid["n_clusters"]["values"] == [100, 150, 200, 300]
    with pytest.raises(TCULError, match="unknown sweep grid 'tiny'"):
        sweep_plan(cfg, Target(), grid="tiny")


def test_load_sweeps_empty(tmp_path):
    assert load_sweeps(tmp_path) == {}
    assert load_sweeps(tmp_path / "missing") == {}


def test_sweep_plan_smoke_has_two_values_each(demo):
    from tcul_helpers.experiment import pipeline

    cfg, _, _, _ = demo
    plan = sweep_plan(cfg, pipeline.ensure_world(cfg, "target", progress=False))
    assert set(plan) == {"lambda_fr", "n_clusters", "crowd_density", "reappear_prob"}
    assert all(len(spec["values"]) == 2 for spec in plan.values())
    full = sweep_plan(cfg.replace(profile="classroom"),
                      pipeline.ensure_world(cfg, "target", progress=False))
    assert full["lambda_fr"]["values"][0] == 0 and full["lambda_fr"]["values"][-1] >= 10**6
    ks = full["n_clusters"]["values"]
    assert min(ks) < full["n_clusters"]["true_value"] < max(ks)


def _results(tcul=40.0, sul=30.0, base=20.0, counts=(10, 20, 30), lam=None, ks=None):
    pts: dict = {}
    if lam:
        pts["lambda_fr"] = [{"variant": "tcul", "value": v, "mAP": m} for v, m in lam]
    if ks:
        pts["n_clusters"] = [{"variant": "tcul", "value": v, "mAP": m, "true_value": 24}
                             for v, m in ks]
    return {
        "profile": "smoke", "seed": 0,
        "methods": {"baseline": {"rank1": 1, "rank5": 2, "mAP": base},
                    "tcul": {"rank1": 3, "rank5": 4, "mAP": tcul},
                    "sul": {"rank1": 5, "rank5": 6, "mAP": sul},
                    "pul": {"rank1": 7, "rank5": 8, "mAP": 21.0}},
        "histories": {"tcul": {"iterations": [{"n_reliable": c} for c in counts]}},
        "sweeps": {"points": pts},
    }


def test_claims_are_computed_from_the_numbers(tmp_path):
    good = claims(_results(lam=[(0, 30), (100, 45), (10**7, 20)],
                           ks=[(12, 30), (24, 40), (48, 35)]))
    assert all(line.startswith("- **HOLDS**") for line in good), good
    assert "monotone: yes" in good[2]
    bad = claims(_results(tcul=25.0, sul=30.0, counts=(30, 20, 25),
                          lam=[(0, 30), (10**7, 40)], ks=[(12, 50), (24, 40)]))
    assert all(line.startswith("- **DOES NOT HOLD**") for line in bad), bad
    path = write_report(_results(), tmp_path, {})
    text = path.read_text()
    assert "| TCUL | 3.0 / 4.0 / 40.0 |" in text
    assert " / ".join(f"{x:.1f}" for x in PAPER_TABLE2["tcul"]["Duke->Market"]) in text
    assert text.count("NOT COMPUTED") == 2


def test_k_claim_shows_the_precision_recall_trade_off():
    res = _results(ks=[(12, 50), (24, 40)])
    assert "recall" not in claims(res)[4]  # nothing made up without the sweep's records
    for p, (prec, rec) in zip(res["sweeps"]["points"]["n_clusters"], ((0.4, 0.6), (0.7, 0.3)),
                              strict=True):
        p["precision"], p["recall"] = [0.1, prec], [0.2, rec]
    line = claims(res)[4]
    assert line.startswith("- **DOES NOT HOLD**")
    assert "precision / recall in the last iteration: K=12 0.40 / 0.60, K=24 0.70 / 0.30" in line
    for p, cams in zip(res["sweeps"]["points"]["n_clusters"], (3.5, 1.25), strict=True):
        p["camera_pairs"] = {"cameras_per_pseudo_id": cams}
    assert ("precision / recall / cameras per pseudo-id in the last iteration: "
            "K=12 0.40 / 0.60 / 3.5, K=24 0.70 / 0.30 / 1.2") in claims(res)[4]


def test_figure_links_resolve_from_the_report_with_a_relative_out_dir(demo, tmp_path,
                                                                       monkeypatch):
    _, root, results, _ = demo
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs" / "demo").mkdir(parents=True)
    fig = tmp_path / "runs" / "demo" / FIGURE_FILES["fig5"]
    fig.write_bytes((root / "demo" / FIGURE_FILES["fig5"]).read_bytes())
    report = write_report(results, "runs/demo", {"fig5": f"runs/demo/{FIGURE_FILES['fig5']}"})
    text = report.read_text()
    assert f"]({FIGURE_FILES['fig5']})" in text  # relative to report.md, not to the cwd


def test_report_names_the_command_as_typed(monkeypatch):
    from tcul_helpers.experiment import demo

    monkeypatch.setattr("sys.argv", ["/x/tcul_helpers/__main__.py", "demo", "--seed", "1"])
    assert demo._invocation() == "python -m tcul_helpers demo --seed 1"
    monkeypatch.setattr("sys.argv", ["benchmarks/bench_demo.py", "--quiet"])
    assert demo._invocation() == "python bench_demo.py --quiet"


def test_order_claim_reports_the_precision_behind_it():
    res = _results(tcul=40.0, sul=15.0, base=20.0)
    res["histories"] = {
        "tcul": {"iterations": [{"n_reliable": 10, "precision": 0.5, "precision_all": 0.2},
                                {"n_reliable": 20, "precision": 0.7, "precision_all": 0.3}]},
        "sul": {"iterations": [{"n_reliable": 10, "precision": 0.25, "precision_all": 0.2}]},
    }
    line = claims(res)[1]
    assert line.startswith("- **DOES NOT HOLD**")
    assert "(TCUL - SUL +25.0, SUL - baseline -5.0)" in line
    assert "TCUL 0.60, SUL 0.25 (all clustered images 0.25)" in line
    assert "precision" not in claims(_results())[1]  # nothing made up without histories


def test_load_sweeps_keeps_only_the_points_of_the_given_settings_and_worlds(tmp_path,
                                                                           monkeypatch):
    from tcul_helpers.data.synthetic import presets
    from tcul_helpers.experiment.sweeps import default_dir, point_key, point_path

    cfg0, cfg1 = get_config("smoke", seed=0), get_config("smoke", seed=1)
    for cfg, value in ((cfg0, 10), (cfg1, 20)):
        path = point_path(tmp_path, "lambda_fr", "tcul", value)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"variant": "tcul", "value": value, "mAP": 1.0,
                                    "key": point_key(cfg, "lambda_fr", value)}))
    assert [p["value"] for p in load_sweeps(tmp_path)["lambda_fr"]] == [10, 20]
    assert [p["value"] for p in load_sweeps(tmp_path, cfg1)["lambda_fr"]] == [20]
    assert default_dir(cfg1, "runs") == Path("runs") / "smoke" / "seed1" / "sweeps"
    # a world sweep's point is keyed by its own world; a re-calibrated preset makes the
    # points computed on the old worlds stale
    assert point_key(cfg0, "crowd_density", 1.0) != point_key(cfg0, "crowd_density", 2.0)
    target = dict(presets._PRESET_KNOBS["target"], camera_variation=0.25)
    monkeypatch.setitem(presets._PRESET_KNOBS, "target", target)
    assert "lambda_fr" not in load_sweeps(tmp_path, cfg1)


def test_runs_are_shared_by_demo_cli_and_notebooks(demo, tmp_path, monkeypatch):
    """One folder per (profile, seed, variant): the demo's runs are the notebooks' runs, and
    a path typed relative to the repository is the same world as the notebooks' absolute
    one (the source model is reused, not retrained)."""
    from tcul_helpers.experiment import pipeline
    from tcul_helpers.teaching.session import LabSession

    cfg, root, results, _ = demo
    runs = root  # run_demo(out_dir=root / "demo") keeps its runs beside out_dir
    assert pipeline.variant_dir(cfg, "tcul", runs) == runs / "smoke" / "seed0" / "tcul"
    assert (runs / "smoke" / "seed0" / "tcul" / "history.json").is_file()
    sul = pipeline.variant_config(cfg, "sul")
    assert pipeline.variant_dir(sul, "sul", runs) == runs / "smoke" / "seed0" / "sul"
    assert (runs / "smoke" / "seed0" / "sul" / "history.json").is_file()
    other = pipeline.variant_dir(cfg.replace(lambda_fr=7), "tcul", runs)
    assert other.parent == runs / "smoke" / "seed0" and other.name.startswith("tcul-")
    assert len(other.name) == len("tcul-") + 8  # a settings hash
    mine = pipeline.variant_dir(cfg.replace(selection="none"), "tcul", runs)
    assert mine.name == "tcul-selection-none"
    # a notebook session in the same home finds the same run folder
    home = tmp_path / "home"
    (home / "runs").mkdir(parents=True)
    lab = LabSession("smoke", progress=False, home=home)
    assert lab.run_dir("sul") == home / "runs" / "smoke" / "seed0" / "sul"
    # cached_history reads a finished run and computes nothing when there is none
    assert lab.cached_history("tcul") is None
    assert not (home / "runs" / "smoke" / "seed0" / "tcul").exists()
    (tmp_path / "home2").mkdir()
    (tmp_path / "home2" / "runs").symlink_to(runs, target_is_directory=True)
    seen = LabSession("smoke", progress=False, home=tmp_path / "home2")
    assert seen.cached_history("tcul")["status"] == "complete"
    assert len(seen.cached_history("sul")["iterations"]) == cfg.n_iter
    # relative roots (the command line, started in the repository) == absolute roots
    monkeypatch.chdir(root)
    rel = cfg.replace(source_root="src", target_root="tgt")
    logs: list[str] = []
    pipeline.ensure_source_model(rel, pipeline.ensure_world(rel, "source", progress=False),
                                 runs / "smoke" / "seed0" / "source", progress=False,
                                 log=logs.append)
    assert logs and logs[0].startswith("reusing"), logs


def test_a_sweep_world_of_an_older_calibration_is_regenerated(tmp_path):
    """The sweeps' own world folders follow the current presets (a re-calibration must not
    stop `make sweeps` with "holds another synthetic world")."""
    from tcul_helpers.data.synthetic import make_world, world_request
    from tcul_helpers.experiment.sweeps import _world

    cfg = get_config("smoke", target_root=str(tmp_path / "t"))
    root = tmp_path / "sw" / "worlds" / "crowd_density-2"
    make_world(root, "target", cfg.seed, scale="smoke", progress=False, crowd_density=2.0,
               reappear_prob=0.3)  # the "old preset"
    ds = _world(cfg, "crowd_density", 2.0, tmp_path / "sw", progress=False)
    assert ds.extra["manifest"]["request"] == world_request("target", "smoke", cfg.seed,
                                                            crowd_density=2.0)


def test_continuity_table_puts_each_world_beside_its_own_baseline(tmp_path):
    res = _results()
    res["sweeps"]["points"]["crowd_density"] = [
        {"variant": v, "value": 2.0, "mAP": m, "baseline": {"mAP": 9.0}, "precision": [0.5, p]}
        for v, m, p in (("tcul", 30.0, 0.6), ("sul", 12.5, 0.3))]
    text = write_report(res, tmp_path, {}).read_text()
    assert "| crowd density | baseline mAP | TCUL mAP | SUL mAP | TCUL - SUL |" in text
    assert "| 2 | 9.0 | 30.0 | 12.5 | 17.5 | 0.600 |" in text


def test_a_setting_added_later_leaves_older_fingerprints_alone():
    """``finetune_loss`` and ``epoch`` came after sweep points and demo baselines were cached:
    at the value they were all computed with (triplet, identities) they are left out of the
    fingerprint, so they stay valid; PUL's softmax or an "images" epoch make another one."""
    import hashlib

    from tcul_helpers.experiment import sweeps

    cfg = get_config("smoke")
    older = {k: v for k, v in cfg.to_dict().items()
             if k not in ("device", "num_workers", "eval_batch_size", "source_root",
                          "target_root", "extra") and k not in ("finetune_loss", "epoch")}
    blob = json.dumps(older, sort_keys=True).encode()
    assert sweeps.fingerprint(cfg) == hashlib.sha1(blob).hexdigest()[:12]
    assert sweeps.fingerprint(cfg.replace(finetune_loss="softmax")) != sweeps.fingerprint(cfg)
    assert sweeps.fingerprint(cfg.replace(epoch="images")) != sweeps.fingerprint(cfg)


def test_an_older_configuration_loads_with_the_values_it_ran_with(tmp_path):
    """A config.json written before ``epoch`` existed ran "identities" epochs, whatever its
    profile: it loads so, and the source model it names is still the same one."""
    from tcul_helpers.settings.config import Config, is_source_setting, source_settings

    cfg = get_config("paper")
    older = {k: v for k, v in cfg.to_dict().items() if k != "epoch"}
    (tmp_path / "config.json").write_text(json.dumps(older))
    loaded = Config.load(tmp_path / "config.json")
    assert loaded.epoch == "identities" and loaded.replace(epoch="images") == cfg
    classroom = get_config("classroom")
    assert "epoch" not in source_settings(classroom)  # as before the setting existed
    assert source_settings(classroom.replace(epoch="images"))["epoch"] == "images"
    assert is_source_setting("epoch") and not is_source_setting("lambda_fr")
    assert not is_source_setting("crowd_density")  # a world knob, not a Config field


def test_starts_table_puts_both_starts_side_by_side():
    from tcul_helpers.experiment.report import starts_table

    scratch, imagenet = _results(tcul=40.0), _results(tcul=12.5, base=9.0)
    res = {**scratch, "start": "scratch",
           "starts": {"scratch": {**scratch, "out": "runs/demo"},
                      "imagenet": {**imagenet, "out": "runs/demo-imagenet"}}}
    lines = starts_table(res)
    assert lines[0] == "| method | from scratch | ImageNet start |"
    tcul = next(x for x in lines if x.startswith("| TCUL |"))
    base = next(x for x in lines if x.startswith("| baseline |"))
    assert tcul.endswith("| 3.0 / 4.0 / 40.0 | 3.0 / 4.0 / 12.5 |")
    assert base.endswith("/ 20.0 | 1.0 / 2.0 / 9.0 |")
    # the other start's claims come from its own numbers (TCUL 12.5 < SUL 30: does not hold)
    at = lines.index("Claims, ImageNet start (its own demo report has the details):")
    assert lines[at + 2].startswith("- **DOES NOT HOLD**")
    # one start only: the table says how to compute the other
    alone = starts_table({**scratch, "start": "scratch",
                          "starts": {"scratch": {**scratch, "out": "runs/demo"}}})
    assert any("`make demo INIT=imagenet`" in x for x in alone)
    assert starts_table(scratch) == []


def test_realism_table_checks_the_target_goal():
    from tcul_helpers.experiment.report import realism_table

    def stats(r1, m):
        return {"retrieval": {"rank1": r1, "mAP": m, "chance_rank1": 0.3, "chance_mAP": 1.2,
                              "nn_same_camera": 70.0, "chance_nn_same_camera": 20.0},
                "crop": {"person_share_mean": 41.0}, "time": {"images_per_visit": 4.2}}

    ok = realism_table({"realism": {"source": stats(11.8, 8.6), "target": stats(12.6, 6.3)}})
    assert ok[0] == "| statistic | source world | target world | real data |"
    assert any(x.startswith("| whole-crop colour histogram rank-1 (%) | 11.8 | 12.6 | 34.4")
               for x in ok)
    assert any("person's share" in x and "| 41% | 41% |" in x for x in ok)
    assert any("n/a" in x for x in ok)  # a statistic the stats lack is shown as missing
    assert any("**met**" in x for x in ok)
    solved = realism_table({"realism": {"target": stats(60.0, 40.0)}})  # colour solves it
    assert any("**NOT met**" in x for x in solved)
    assert realism_table({}) == []


def test_sweeps_visit_the_default_and_both_ends_first():
    from tcul_helpers.experiment.sweeps import visit_order

    lam = [0, 10, 25, 50, 100, 200, 400, 1000, 10**7]
    order = visit_order(lam, 100)
    assert order[:3] == [100, 0, 10**7] and sorted(order) == lam
    assert order[3] == 25  # the middle of the widest gap left (0 .. 100)
    ks = visit_order([400, 50, 100, 150, 200, 300], 190)  # nearest the true count first
    assert ks[:3] == [200, 50, 400] and sorted(ks) == [50, 100, 150, 200, 300, 400]
    assert visit_order([3, 1, 3]) == [1, 3] and visit_order([]) == []
