"""Several ranks on one run (``tcul_helpers.infra.distributed``), on the CPU with the gloo backend.

* The helpers: without torchrun each is the identity; with 2 gloo processes the batch
  gradient that DDP averages equals one process's gradient of the whole P x M batch, the
  sharded rows come back whole and in order, and an error raised on rank 0 stops every rank.
* The command line under ``torchrun --nproc_per_node 2`` (smoke profile): ``adapt`` runs,
  writes one consistent run folder, resumes, and its iteration-1 pseudo-labels equal a
  single-process run's from the same f_theta0 (the extraction and the clustering are the
  same computation); a bad batch size stops every rank with one line; a rank killed in the
  middle of a run leaves the other with one line saying that the same command resumes, and
  it does.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from sklearn.metrics import adjusted_rand_score
from torch import nn

from tcul_helpers.infra import distributed
from tcul_helpers.infra.errors import TCULError
from tcul_helpers.method.triplet_loss import batch_hard_triplet_loss

REPO = Path(__file__).resolve().parents[1]
RUN_FILES = {"config.json", "history.json", "model_last.pt", "state.npz", "trace.npz"}


# ----------------------------------------------------------------------- the helpers
def test_single_process_helpers_are_the_identity():
    assert not distributed.launched() and distributed.world_size() == 1
    assert distributed.rank() == 0 and distributed.is_main()
    assert distributed.shard_bounds(7) == (0, 7)
    rows = np.arange(12, dtype=np.float32).reshape(6, 2)
    assert distributed.gather_rows(rows, 6) is rows
    x = torch.ones(3)
    assert distributed.gather_batch(x) is x and distributed.loss_scale() == 1
    model = nn.Linear(2, 2)
    assert distributed.wrap(model, torch.device("cpu")) is model
    assert distributed.on_main(lambda a, b: a + b, 2, b=3) == 5
    assert distributed.from_main(rows) is rows
    sampler = object()
    assert distributed.batches(sampler) is sampler


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 6))


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.randn(16, 8, generator=g), torch.arange(4).repeat_interleave(4)


def _worker(rank: int, world: int, port: int, out: str) -> None:
    """One gloo rank: a DDP step on its share of the batch, the rows gather, rank-0 errors."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        model = _net()
        net = distributed.wrap(model, torch.device("cpu"))
        x, labels = _batch()
        start, stop = distributed.shard_bounds(len(x))
        emb, lab = distributed.gather_batch((net(x[start:stop]), labels[start:stop]))
        loss = batch_hard_triplet_loss(emb, lab, 0.5)
        (loss * distributed.loss_scale()).backward()
        local = np.arange(7 * 3, dtype=np.float32).reshape(7, 3)
        s0, s1 = distributed.shard_bounds(7)
        rows = distributed.gather_rows(local[s0:s1], 7)
        try:
            distributed.on_main(_fail_on_rank0)
            error = ""
        except TCULError as exc:
            error = str(exc)
        np.savez(Path(out) / f"rank{rank}.npz", grad=model[0].weight.grad.numpy(),
                 loss=loss.item(), rows=rows, error=np.array(error),
                 decided=np.array(distributed.on_main(lambda: distributed.rank() + 10)),
                 taken=distributed.from_main(np.full(3, rank + 20)))
        # both ranks are done sending before either leaves: a rank that destroys the gloo
        # group while the other still sends can abort it (as distributed.settle in the CLI)
        dist.barrier()
    finally:
        dist.destroy_process_group()


def _fail_on_rank0() -> None:
    raise TCULError(f"raised on rank {distributed.rank()} alone")


def test_two_gloo_ranks_give_the_whole_batch_gradient(tmp_path):
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    model = _net()
    x, labels = _batch()
    loss = batch_hard_triplet_loss(model(x), labels, 0.5)
    loss.backward()
    want = model[0].weight.grad.numpy()
    for rank in (0, 1):
        got = np.load(tmp_path / f"rank{rank}.npz")
        # DDP's average of the two ranks' (N x loss) gradients = the whole batch's gradient
        np.testing.assert_allclose(got["grad"], want, rtol=1e-5, atol=1e-7)
        assert float(got["loss"]) == pytest.approx(loss.item(), rel=1e-6)
        np.testing.assert_array_equal(got["rows"], np.arange(21, dtype=np.float32).reshape(7, 3))
        assert str(got["error"]) == "raised on rank 0 alone"  # inside on_main rank 0 is alone
        assert int(got["decided"]) == 10  # rank 0's answer, on both ranks
        assert got["taken"].tolist() == [20, 20, 20]  # rank 0's own value, on both ranks


# ----------------------------------------------------------------------- the command line
def _cli(*args: str, nproc: int = 1, timeout: int = 300) -> subprocess.CompletedProcess:
    launcher = [sys.executable]
    if nproc > 1:
        launcher += ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
                     str(nproc)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    return subprocess.run([*launcher, "-m", "tcul_helpers", *args, "--profile", "smoke",
                           "--device", "cpu", "--quiet"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("ddp")


@pytest.fixture(scope="module")
def single(runs: Path) -> Path:
    """The single-process run; it also trains the f_theta0 that the DDP runs reuse."""
    proc = _cli("adapt", "--runs", str(runs), "--out", str(runs / "single"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    return runs / "single"


def test_torchrun_adapt_matches_one_process_and_resumes(runs: Path, single: Path):
    out = runs / "ddp"
    first = _cli("adapt", "--runs", str(runs), "--out", str(out), "--stop-after", "1", nproc=2)
    assert first.returncode == 0, first.stderr[-3000:]
    assert first.stdout.count("reusing the source model") == 1  # rank 0 alone prints
    assert "status: stopped" in first.stdout
    second = _cli("adapt", "--runs", str(runs), "--out", str(out), nproc=2)
    assert second.returncode == 0, second.stderr[-3000:]
    assert f"resuming {out} after iteration 1" in second.stdout

    # one consistent run folder, written by rank 0 alone: the files of a one-process run
    # (the lock file stays, unlocked, by design), no pending file of a half commit
    names = {p.name for p in out.iterdir()}
    assert names == {p.name for p in single.iterdir()} and RUN_FILES <= names
    hist = json.loads((out / "history.json").read_text())
    assert hist["status"] == "complete" and [r["iteration"] for r in hist["iterations"]] == [1, 2]
    ref = json.loads((single / "history.json").read_text())
    assert hist["baseline"]["mAP"] == pytest.approx(ref["baseline"]["mAP"], abs=1e-6)

    a, b = np.load(single / "trace.npz"), np.load(out / "trace.npz")
    # iteration 1 decides on the baseline features: extraction sharded over the ranks and
    # gathered, then the same k-means and Eq. 1-3 -> the same pseudo-labels and kept set
    np.testing.assert_allclose(b["centers_0"], a["centers_0"], atol=1e-5)
    np.testing.assert_array_equal(b["labels_1"], a["labels_1"])
    np.testing.assert_array_equal(b["kept_1"], a["kept_1"])
    # later iterations follow a model fine-tuned with per-rank BatchNorm statistics and
    # per-rank augmentation streams on the CPU: close, not equal (see the README)
    ari = adjusted_rand_score(a["labels_2"], b["labels_2"])
    print(f"iteration-2 pseudo-labels, 1 vs 2 ranks: ARI {ari:.3f}")
    assert 0.0 < ari <= 1.0


def test_torchrun_bad_batch_stops_every_rank_with_one_line(runs: Path, single: Path):
    proc = _cli("adapt", "--runs", str(runs), "--out", str(runs / "bad"), "--set",
                "batch_ids=3", "--set", "batch_instances=3", nproc=2)
    assert proc.returncode != 0
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert lines == ["error: a batch of 9 images cannot be split evenly over 2 ranks: choose "
                     "batch_ids x batch_instances divisible by the number of processes "
                     "(torchrun --nproc_per_node)"]
    # no traceback through the kit's code (torchrun adds its own summary of the failed ranks)
    assert f'File "{REPO / "tcul_helpers"}' not in proc.stderr


def test_torchrun_refuses_a_one_process_command():
    proc = _cli("sweep", "--param", "lambda_fr", "--values", "50", nproc=2, timeout=120)
    assert proc.returncode != 0
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1  # rank 0 says it, once
    assert lines[0].startswith("error: sweep runs in one process: start it without torchrun")


def _rank_pids(marker: str) -> dict[int, int]:
    """{rank: pid} of the torchrun workers whose command line holds ``marker``."""
    found = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            env = (proc / "environ").read_bytes().split(b"\0")
            if marker.encode() not in (proc / "cmdline").read_bytes():
                continue
        except OSError:
            continue
        ranks = [e[5:] for e in env if e.startswith(b"RANK=")]
        if ranks and any(e.startswith(b"TORCHELASTIC_RUN_ID=") for e in env):
            found[int(ranks[0])] = int(proc.name)
    return found


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs /proc (Linux)")
def test_a_killed_rank_leaves_one_line_and_the_same_command_resumes(runs: Path, single: Path):
    out = runs / "killed"
    args = ["adapt", "--runs", str(runs), "--out", str(out), "--iterations", "40"]
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                "--nproc_per_node", "2"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.Popen([*launcher, "-m", "tcul_helpers", *args, "--profile", "smoke",
                             "--device", "cpu", "--quiet"], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed = False
    for line in proc.stdout:  # rank 0 prints one line per completed iteration
        if line.startswith("iteration 1/"):
            os.kill(_rank_pids(str(out))[1], signal.SIGKILL)
            killed = True
            break
    _rest, err = proc.communicate(timeout=300)
    assert killed and proc.returncode != 0, err[-2000:]
    said = [ln for ln in err.splitlines() if "rank 0" in ln and "same command" in ln
            and not ln.startswith(" ")]
    assert len(said) == 1, err[-3000:]
    assert said[0].startswith(("error: rank 0: another rank of this torchrun run stopped",
                               "rank 0 stopped by SIGTERM")), said
    assert f'File "{REPO / "tcul_helpers"}' not in err  # no traceback through the kit
    done = len(json.loads((out / "history.json").read_text())["iterations"])
    assert 1 <= done < 40
    again = _cli(*args, nproc=2)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"resuming {out} after iteration {done}" in again.stdout
    assert json.loads((out / "history.json").read_text())["status"] == "complete"
