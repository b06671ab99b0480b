"""``report.md`` of the demo: Table 2, the figures and a checklist of the paper's claims.

Every number in the report comes from the ``results`` dict written by
:func:`tcul_helpers.experiment.demo.run_demo` (``results.json``), except :data:`PAPER_TABLE2`,
which is
quoted from the paper (Table 2, via method-notes.md) and labelled as such.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..infra.atomic_files import write_text
from ..infra.formatting import number
from ..settings.config import VARIANT_NAMES, VARIANTS

#: Quoted from the paper (Ali et al., Table 2): rank-1 / rank-5 / mAP in percent.
#: Not computed by the kit.
PAPER_TABLE2: dict[str, dict[str, tuple[float, float, float] | None]] = {
    "baseline": {"Duke->Market": (42.8, 57.2, 18.8), "Market->Duke": (26.5, 41.5, 11.8)},
    "pul": {"Duke->Market": (44.7, 59.1, 20.1), "Market->Duke": (30.4, 44.5, 16.4)},
    "sul": {"Duke->Market": (72.5, 86.4, 47.5), "Market->Duke": (62.2, 77.4, 42.5)},
    "tcul": {"Duke->Market": (75.8, 89.0, 51.7), "Market->Duke": (64.0, 79.2, 45.0)},
}

HOLDS, FAILS, NOT_COMPUTED = "HOLDS", "DOES NOT HOLD", "NOT COMPUTED"
SWEEP_POINTER = "Not computed yet: `make sweeps` computes them (then run the demo again)."
FIG4_POINTER = ("Not computed yet: the demo computes Fig. 4 on the CPU profiles (unless "
                "--no-sweeps), `make sweeps` on any profile (then run the demo again).")


def _mAP(results: dict, method: str) -> float | None:
    return (results.get("methods", {}).get(method) or {}).get("mAP")


def _claim(status: str, text: str, detail: str) -> str:
    return f"- **{status}** - {text}: {detail}"


def _sweep_points(results: dict, name: str, variant: str = "tcul") -> list[dict]:
    points = (results.get("sweeps", {}).get("points") or {}).get(name) or []
    pts = [p for p in points if p.get("variant") == variant and p.get("mAP") is not None]
    return sorted(pts, key=lambda p: p["value"])


def _mean_of(iters: list[dict], key: str) -> float | None:
    values = [float(r[key]) for r in iters if r.get(key) is not None]
    return sum(values) / len(values) if values else None


def _precision_detail(results: dict) -> str:
    """What the selections fed the fine-tuning: mean pairwise precision of the kept
    pseudo-labels per variant, and of all clustered images (the reason behind the order)."""
    hist = results.get("histories", {})
    parts, everything = [], None
    for variant, label in (("tcul", "TCUL"), ("sul", "SUL")):
        iters = (hist.get(variant) or {}).get("iterations") or []
        kept = _mean_of(iters, "precision")
        if kept is not None:
            parts.append(f"{label} {kept:.2f}")
        if everything is None:
            everything = _mean_of(iters, "precision_all")
    if not parts:
        return ""
    tail = f" (all clustered images {everything:.2f})" if everything is not None else ""
    return ("; pairwise precision of the kept pseudo-labels, mean over iterations: "
            + ", ".join(parts) + tail)


def claims(results: dict) -> list[str]:
    """The paper's claims, each evaluated from ``results``: HOLDS / DOES NOT HOLD /
    NOT COMPUTED, with the numbers it was decided on."""
    out: list[str] = []
    base, tcul, sul = _mAP(results, "baseline"), _mAP(results, "tcul"), _mAP(results, "sul")

    text = "TCUL improves mAP over the baseline by at least 15 points"
    if base is None or tcul is None:
        out.append(_claim(NOT_COMPUTED, text, "TCUL or baseline mAP missing"))
    else:
        ok = tcul >= base + 15
        out.append(_claim(HOLDS if ok else FAILS, text,
                          f"TCUL {tcul:.1f} vs baseline {base:.1f} ({tcul - base:+.1f})"))

    text = "TCUL > SUL > baseline on mAP"
    if None in (base, tcul, sul):
        out.append(_claim(NOT_COMPUTED, text, "a method's mAP is missing"))
    else:
        ok = tcul > sul > base
        out.append(_claim(HOLDS if ok else FAILS, text,
                          f"TCUL {tcul:.1f}, SUL {sul:.1f}, baseline {base:.1f} (TCUL - SUL "
                          f"{tcul - sul:+.1f}, SUL - baseline {sul - base:+.1f})"
                          + _precision_detail(results)))

    text = "TCUL's reliable-sample count grows over the iterations"
    iters = (results.get("histories", {}).get("tcul") or {}).get("iterations") or []
    counts = [int(r["n_reliable"]) for r in iters if r.get("n_reliable") is not None]
    if len(counts) < 2:
        out.append(_claim(NOT_COMPUTED, text, "fewer than 2 iterations"))
    else:
        monotone = all(b >= a for a, b in zip(counts, counts[1:], strict=False))
        ok = counts[-1] > counts[0]
        out.append(_claim(HOLDS if ok else FAILS, text,
                          f"first {counts[0]}, last {counts[-1]} (last > first: "
                          f"{'yes' if ok else 'no'}; monotone: {'yes' if monotone else 'no'}; "
                          f"counts {counts})"))

    text = "mAP falls when lambda_fr grows well past its best value"
    pts = _sweep_points(results, "lambda_fr")
    if len(pts) < 2:
        out.append(_claim(NOT_COMPUTED, text,
                          "no lambda_fr sweep cached for these settings (`make sweeps`)"))
    else:
        best = max(pts, key=lambda p: p["mAP"])
        last = pts[-1]
        ok = last["value"] > best["value"] and last["mAP"] < best["mAP"]
        out.append(_claim(HOLDS if ok else FAILS, text,
                          f"best mAP {best['mAP']:.1f} at lambda_fr={best['value']:g}; "
                          f"mAP {last['mAP']:.1f} at lambda_fr={last['value']:g}"))

    text = "mAP peaks at the K nearest the true number of identities"
    pts = _sweep_points(results, "n_clusters")
    true_k = next((p.get("true_value") for p in pts if p.get("true_value") is not None), None)
    if len(pts) < 2 or true_k is None:
        out.append(_claim(NOT_COMPUTED, text,
                          "no n_clusters sweep cached for these settings (`make sweeps`)"))
    else:
        best = max(pts, key=lambda p: p["mAP"])
        nearest = min(pts, key=lambda p: abs(p["value"] - true_k))
        ok = best["value"] == nearest["value"]
        out.append(_claim(HOLDS if ok else FAILS, text,
                          f"best mAP {best['mAP']:.1f} at K={best['value']:g}; true number "
                          f"{true_k:g}, nearest K tried {nearest['value']:g} "
                          f"(mAP {nearest['mAP']:.1f})" + _k_tradeoff(pts)))
    return out


def _last(values: list | None) -> float | None:
    kept = [v for v in values or [] if v is not None]
    return kept[-1] if kept else None


def _k_tradeoff(points: list[dict]) -> str:
    """The last iteration's pairwise precision / recall of the kept labels at every K, and
    how many cameras a pseudo-identity spans: fewer clusters merge people (precision falls)
    but put more cameras under one pseudo-label (camera invariance to learn)."""
    rows = [(p["value"], _last(p.get("precision")), _last(p.get("recall")),
             (p.get("camera_pairs") or {}).get("cameras_per_pseudo_id")) for p in points]
    rows = [r for r in rows if r[1] is not None and r[2] is not None]
    if not rows:
        return ""
    parts = [f"K={k:g} {prec:.2f} / {rec:.2f}" + (f" / {cams:.1f}" if cams is not None else "")
             for k, prec, rec, cams in rows]
    with_cams = all(cams is not None for *_, cams in rows)
    what = "precision / recall / cameras per pseudo-id" if with_cams else "precision / recall"
    return f"; kept pseudo-labels' {what} in the last iteration: " + ", ".join(parts)


def _camera_pairs(results: dict) -> list[str]:
    """Table: the kept pseudo-label pairs of each variant split into same-camera and
    cross-camera pairs, first and last iteration, with a sentence drawn from the numbers."""
    data = results.get("camera_pairs") or {}
    rows = []
    for key in VARIANTS:
        iters = data.get(key) or []
        for r in ([iters[0], iters[-1]] if len(iters) > 1 else iters):
            rows.append(
                f"| {VARIANT_NAMES[key]} | {r['iteration']} | "
                f"{number(r.get('pairs_same_camera'), 0)} "
                f"({number(r.get('precision_same_camera'), 2)})"
                f" | {number(r.get('pairs_cross_camera'), 0)} "
                f"({number(r.get('precision_cross_camera'), 2)}) | "
                f"{number(r.get('true_pairs_cross_camera'), 0)} | "
                f"{number(r.get('cameras_per_pseudo_id'), 2)} |")
    if not rows:
        return []
    lines = ["### Which pairs each selection teaches: inside one camera or across cameras", "",
             "Re-id is tested across cameras. Pairs of kept images that share a pseudo-label, "
             "split by camera (precision against the true identities in brackets):", "",
             "| method | iteration | same-camera pairs | cross-camera pairs | "
             "correct cross-camera pairs | cameras per pseudo-id |",
             "|---|---|---|---|---|---|", *rows, ""]
    first = {k: (data.get(k) or [None])[0] for k in ("tcul", "sul")}
    last = {k: (data.get(k) or [None])[-1] for k in ("tcul", "sul")}
    if all(first.values()) and all(last.values()):

        def wrong(r: dict) -> str:
            p = r.get("precision_same_camera")
            return number(r["pairs_same_camera"] * (1 - p), 0) if p is not None else "n/a"

        def span(k: str) -> str:
            return (f"{number(first[k].get('cameras_per_pseudo_id'), 2)} -> "
                    f"{number(last[k].get('cameras_per_pseudo_id'), 2)}")

        lines += [
            f"In iteration 1 SUL's selection put {wrong(first['sul'])} same-camera pairs of "
            f"different people under one pseudo-label (TCUL's: {wrong(first['tcul'])}). Frame "
            "ids keep a camera's share of a pseudo-identity to one person; a similarity "
            "threshold keeps whoever looks like the centre in that camera, and fine-tuning on "
            "those pairs can teach the network what a camera looks like rather than who is in it. "
            f"Cameras per pseudo-identity, first -> last iteration: SUL {span('sul')}, TCUL "
            f"{span('tcul')}; correct cross-camera pairs taught in the last iteration: SUL "
            f"{number(last['sul'].get('true_pairs_cross_camera'), 0)}, TCUL "
            f"{number(last['tcul'].get('true_pairs_cross_camera'), 0)}.", ""]
    return lines


def _table2(results: dict) -> list[str]:
    methods = results.get("methods", {})
    lines = [
        "| method | synthetic target (this run) | Duke->Market (paper) | Market->Duke (paper) |",
        "|---|---|---|---|",
    ]
    for key in ("baseline", *reversed(VARIANTS)):
        m = methods.get(key) or {}
        ours = f"{number(m.get('rank1'))} / {number(m.get('rank5'))} / {number(m.get('mAP'))}"
        paper = []
        for col in ("Duke->Market", "Market->Duke"):
            v = PAPER_TABLE2[key].get(col)
            paper.append(" / ".join(f"{x:.1f}" for x in v) if v else "-")
        lines.append(f"| {VARIANT_NAMES[key]} | {ours} | {paper[0]} | {paper[1]} |")
    lines.append("")
    lines.append("Cells are rank-1 / rank-5 / mAP (%). The paper's columns are **quoted from the "
                 "paper** (Table 2), not computed here; the synthetic column is this run.")
    return lines


START_NAMES = {"scratch": "from scratch", "imagenet": "ImageNet start"}


def realism_table(results: dict, goal: bool = True) -> list[str]:
    """Table: the realism statistics of both worlds beside the real-data anchor; ``goal``
    adds whether the target world meets its calibration goal (the report's check)."""
    from ..measurement.realism import GOALS, REAL_ANCHOR, meets_goals

    stats = results.get("realism") or {}
    if not stats:
        return []
    names = [n for n in ("source", "target") if stats.get(n)]

    def cell(name: str, part: str, key: str, spec: str = ".1f", unit: str = "") -> str:
        v = (stats[name].get(part) or {}).get(key)
        return "n/a" if v is None else f"{format(float(v), spec)}{unit}"

    rows = [
        ("whole-crop colour histogram rank-1 (%)", "retrieval", "rank1", ".1f", "",
         f"{REAL_ANCHOR['rank1']} (Market-1501, colour names)"),
        ("whole-crop colour histogram mAP (%)", "retrieval", "mAP", ".1f", "",
         f"{REAL_ANCHOR['mAP']} (Market-1501, colour names)"),
        ("chance rank-1 / mAP (%), random distances", "retrieval", "chance_rank1", ".1f", "",
         "~0.1 rank-1"),
        ("nearest gallery image in the query's camera", "retrieval", "nn_same_camera", ".0f",
         "%", "-"),
        ("... by chance (random distances)", "retrieval", "chance_nn_same_camera", ".0f", "%",
         "-"),
        ("person's share of the crop (renderer's mask)", "crop", "person_share_mean", ".0f", "%",
         "most of a tight DPM box"),
        ("background histogram similarity within a camera", "crop",
         "background_similarity_within_camera", ".3f", "", "-"),
        ("background histogram similarity across cameras", "crop",
         "background_similarity_across_cameras", ".3f", "", "-"),
        ("images per visit", "time", "images_per_visit", ".2f", "", "~4 (Market-1501)"),
        ("other people in the camera within +-lambda_fr", "time", "crowding_mean", ".2f", "",
         "-"),
    ]
    lines = ["| statistic | " + " | ".join(f"{n} world" for n in names) + " | real data |",
             "|---|" + "---|" * len(names) + "---|"]
    for label, part, key, spec, unit, real in rows:
        cells = [cell(n, part, key, spec, unit) for n in names]
        if key == "chance_rank1":
            cells = [f"{c} / {cell(n, part, 'chance_mAP')}" for c, n in zip(cells, names,
                                                                            strict=True)]
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {real} |")
    target = stats.get("target") or {}
    t = target.get("retrieval") or {}
    if t and goal:
        ok = all(meets_goals(target).values())
        lines += ["", f"The target world's goal (data/README.md, \"Calibration\"): a whole-crop "
                  f"colour histogram far above chance (rank-1 >= {GOALS['rank1_min']:g}, mAP >= "
                  f"{GOALS['mAP_min']:g}) that does not solve re-id (mAP <= "
                  f"{GOALS['mAP_max']:g}): **{'met' if ok else 'NOT met'}** (rank-1 "
                  f"{t['rank1']:.1f}, mAP {t['mAP']:.1f}). None of these statistics involves a "
                  "trained network or the paper's claims; `python -m tcul_helpers world --stats "
                  "--dataset market1501 --out DIR` measures a real folder the same way."]
    return lines + [""]


def starts_table(results: dict) -> list[str]:
    """Table 2 and the claims for both starts of f_theta0, side by side."""
    starts = results.get("starts") or {}
    if not starts:
        return []
    order = [s for s in ("scratch", "imagenet") if s in starts]
    lines = ["| method | " + " | ".join(START_NAMES[s] for s in order) + " |",
             "|---|" + "---|" * len(order)]
    for key in ("baseline", *reversed(VARIANTS)):
        cells = []
        for s in order:
            m = (starts[s].get("methods") or {}).get(key) or {}
            cells.append(f"{number(m.get('rank1'))} / {number(m.get('rank5'))} / "
                         f"{number(m.get('mAP'))}")
        lines.append(f"| {VARIANT_NAMES[key]} | " + " | ".join(cells) + " |")
    lines += ["", "Cells are rank-1 / rank-5 / mAP (%) on the same worlds. " + "; ".join(
        f"{START_NAMES[s]}: `{starts[s].get('out')}` ({starts[s].get('date', 'n/a')})"
        for s in order) + "."]
    missing = [s for s in ("scratch", "imagenet") if s not in starts]
    for s in missing:
        name = "start from scratch" if s == "scratch" else START_NAMES[s]
        lines += ["", f"The {name} is not computed for these worlds yet: "
                  f"`make demo INIT={s}` (same PROFILE and SEED) computes it; this report "
                  "then shows both."]
    for s in order:
        if s != results.get("start"):  # this run's claims close the report
            lines += ["", f"Claims, {START_NAMES[s]} (its own demo report has the details):",
                      "", *claims(starts[s])]
    return lines + [""]


def _fig(figures: dict[str, str], key: str, caption: str, out_dir: Path) -> list[str]:
    path = figures.get(key)
    if not path:
        return []
    rel = os.path.relpath(Path(path).resolve(), Path(out_dir).resolve())  # from report.md
    return [f"![{caption}]({Path(rel).as_posix()})", ""]


def _continuity(results: dict) -> list[str]:
    lines: list[str] = []
    for name, label in (("crowd_density", "crowd density"),
                        ("reappear_prob", "re-appearance probability")):
        tc = {p["value"]: p for p in _sweep_points(results, name, "tcul")}
        su = {p["value"]: p for p in _sweep_points(results, name, "sul")}
        if not tc and not su:
            continue
        lines += [f"| {label} | baseline mAP | TCUL mAP | SUL mAP | TCUL - SUL | "
                  "TCUL final precision |", "|---|---|---|---|---|---|"]
        for v in sorted(set(tc) | set(su)):
            t, s = tc.get(v, {}).get("mAP"), su.get(v, {}).get("mAP")
            gap = number(t - s) if t is not None and s is not None else "n/a"
            base = (tc.get(v) or su.get(v) or {}).get("baseline", {}).get("mAP")
            prec = [x for x in tc.get(v, {}).get("precision", []) if x is not None]
            lines.append(f"| {v:g} | {number(base)} | {number(t)} | {number(s)} | {gap} | "
                         f"{number(prec[-1], 3) if prec else 'n/a'} |")
        lines.append("")
    return lines


def write_report(results: dict, out_dir: str | Path, figures: dict[str, str]) -> Path:
    """Write ``out_dir/report.md`` from ``results`` (see
    :func:`tcul_helpers.experiment.demo.run_demo`)
    and ``figures`` (``{key: path}``: fig2, fig3, fig5, iterations, fig4a, fig4b,
    continuity). Returns its path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stages = results.get("stages", {})
    lines = [
        "# TCUL on the synthetic world: demo report",
        "",
        "## How this was produced",
        "",
        f"- profile: `{results.get('profile')}`, seed: {results.get('seed')}",
        f"- command: `{results.get('command', 'tcul_helpers.experiment.demo.run_demo')}`",
        f"- date: {results.get('date', 'n/a')}",
        f"- total wall time: {number(results.get('total_seconds'))} s",
        "",
        "| stage | seconds | reused |",
        "|---|---|---|",
    ]
    for name, st in stages.items():
        lines.append(f"| {name} | {number(st.get('seconds'), 2)} | "
                     f"{'yes' if st.get('reused') else 'no'} |")
    worlds = results.get("worlds", {})
    if worlds:
        lines += ["", "Worlds: " + "; ".join(
            f"{k}: {w.get('train', {}).get('ids')} train ids / "
            f"{w.get('train', {}).get('images')} train images, "
            f"{w.get('query', {}).get('images')} query, {w.get('gallery', {}).get('images')} "
            "gallery" for k, w in worlds.items())]
    lines += ["", "## 0. Is the world believable? Realism statistics", ""] + realism_table(results)
    lines += ["## 1. Table 2: baseline, PUL-style, SUL and TCUL", ""] + _table2(results)
    lines += ["", "### The two starts of f_theta0 side by side", ""] + starts_table(results)
    lines += ["", "## 2. Reliable samples per iteration (Fig. 5) and their precision", ""]
    lines += _fig(figures, "fig5", "Fig. 5: reliable samples and precision", out_dir)
    lines += _fig(figures, "iterations", "metrics per iteration", out_dir)
    for key in VARIANTS:
        iters = (results.get("histories", {}).get(key) or {}).get("iterations") or []
        if iters:
            desc = ", ".join(f"{r.get('n_reliable')} ({number(r.get('precision'), 3)})"
                             for r in iters)
            lines.append(f"- {VARIANT_NAMES[key]}: reliable (precision) per iteration: {desc}")
    lines += [""] + _camera_pairs(results)
    lines += ["", "## 3. Temporal continuity in one camera (Fig. 2)", ""]
    lines += _fig(figures, "fig2", "Fig. 2: images of one camera by frame id", out_dir)
    lines += ["## 4. Eq. 3 in one cluster and camera (Fig. 3)", ""]
    lines += _fig(figures, "fig3", "Fig. 3: kept and rejected images of one group", out_dir)
    if results.get("fig3_note"):
        lines += [results["fig3_note"], ""]
    lines += ["## 5. Sensitivity to lambda_fr and K (Fig. 4a / 4b)", ""]
    fig4 = _fig(figures, "fig4a", "Fig. 4a: mAP vs lambda_fr", out_dir)
    fig4 += _fig(figures, "fig4b", "Fig. 4b: mAP vs K", out_dir)
    lines += fig4 or [FIG4_POINTER, ""]
    lines += ["## 6. Where temporal continuity breaks", ""]
    cont = _fig(figures, "continuity", "mAP vs crowd density and re-appearance", out_dir)
    cont += _continuity(results)
    lines += cont or [SWEEP_POINTER, ""]
    lines += ["## Which of the paper's claims hold here", ""] + claims(results)
    lines += ["", "_Every number above except the paper's Table 2 columns comes from "
              "`results.json` of this run._", ""]
    path = out_dir / "report.md"
    write_text(path, "\n".join(lines))
    return path
