"""``mlkd study``, ``mlkd ablate``, ``mlkd sweep`` and ``mlkd listen``: a study, run and heard."""

from __future__ import annotations

import sys
from pathlib import Path

from ..config import PRESETS, describe_keys
from ..keys import COUNT, POSITIVE, here, number, parse_set
from ..paths import absolute


def _study(a):
    if a.list_keys:
        print(describe_keys(a.preset or "demo"))
        return
    from ..study.executors import RaySettings
    from ..study.runner import run_study
    ray = RaySettings(a.ray_address, a.ray_cpus, a.ray_gpus, a.ray_max_retries)
    overrides = absolute(parse_set(a.set), Path.cwd())  # --set data_dir=... is a path typed here too
    sys.exit(run_study(a.preset, a.out, a.folds, overrides, a.jobs, a.force, a.executor, ray, a.plan, a.config,
                       a.trial))


def _ablate(a):
    from ..study.runner import run_ablation
    sys.exit(run_ablation(a.study, a.out, parse_set(a.set), a.jobs))


def _sweep(a):
    from ..study.executors import RaySettings
    from ..study.sweep import parse_grid, run_sweep
    sys.exit(run_sweep(a.study, a.out, parse_grid(parse_set(a.set)), a.jobs, a.executor, RaySettings(),
                       a.int8_ua, a.rounds, plan_only=a.plan))


def _listen(a):
    """Serve notebook 05 as a page with Voilà on localhost (no code shown)."""
    import os
    import subprocess

    from ..paths import NOTEBOOKS, resolve
    notebook, study = NOTEBOOKS / "05_listen.ipynb", resolve(a.study or "results/demo")
    if not (study / "config.json").is_file():
        raise FileNotFoundError(f"{study} is not a study folder (no config.json): run `mlkd study` first, or "
                                f"name one with --study")
    from ..config import study_config
    study_config(study)  # a study whose data folder now holds other data is refused here, in one line
    env = dict(os.environ, MLKD_STUDY=str(study))
    print(f"serving {notebook.name} for {study} at http://127.0.0.1:{a.port}/  (Ctrl-C stops)")
    subprocess.run([sys.executable, "-m", "voila", str(notebook), f"--port={a.port}", "--no-browser",
                    "--Voila.ip=127.0.0.1", "--theme=light"], env=env, check=False)


def _add_study(sub) -> None:
    s = sub.add_parser("study", help="run the whole study as papermill batches")
    s.add_argument("--preset", choices=sorted(PRESETS), help="the settings to start from (default: the setup "
                   "file's preset, else demo)")
    s.add_argument("--config", type=here, help="a setup file: YAML or JSON of study keys (corpus, manifest, "
                   "emotions, noise_dir, model, ...), its paths relative to its own folder; --set overrides it")
    s.add_argument("--plan", action="store_true", help="check the inputs, time a few training steps of each "
                   "role here, print the steps, disk use and device hours projected from them, write plan.json to "
                   "--out, and exit")
    s.add_argument("--trial", action="store_true", help="the setup at a trial's size: its corpus, noise, classes and "
                   "encoder, a few utterances of each class in one fold, one epoch, short cuts (minutes on a CPU); "
                   "its figures are no result (default --out: results/<setup>-trial beside the setup file)")
    s.add_argument("--list-keys", action="store_true", help="print every config key (type, the preset's value, "
                   "what it is for) and exit")
    s.add_argument("--out", type=here, help="study folder (default: results/<setup name> beside the setup file; "
                   "without one, results/<preset> in the project)")
    s.add_argument("--folds", default="all", help="'all' or comma-separated folds: test speakers (leave-one-speaker-"
                   "out, e.g. Ses01F,Ses01M), fold1,fold2 (kfold) or split")
    s.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config value")
    s.add_argument("--jobs", type=POSITIVE, default=1, help="steps run in parallel (CPU threads are shared out)")
    s.add_argument("--force", action="store_true", help="rerun steps that are already complete")
    s.add_argument("--executor", choices=["local", "ray"], default="local",
                   help="local: papermill processes on this machine; ray: one Ray task per step (needs .[ray])")
    s.add_argument("--ray-address", help="join a running Ray cluster: 'auto' or HOST:PORT (default: a local instance)")
    s.add_argument("--ray-cpus", type=number(float, 0, strict=True),
                   help="CPUs a step asks Ray for (default: cores/--jobs, 1 on a cluster)")
    s.add_argument("--ray-gpus", type=number(float, 0),
                   help="GPUs a model step asks for (default: 1 where the cluster has GPUs)")
    s.add_argument("--ray-max-retries", type=COUNT, default=3, help="re-runs of a step whose node died (not on errors)")
    s.set_defaults(func=_study)


def add_commands(sub) -> None:
    _add_study(sub)
    ab = sub.add_parser("ablate", help="retrain a study's student arms with other settings, reusing the rest")
    ab.add_argument("--study", type=here, required=True,
                    help="a finished study (its data, teachers, baselines and untouched arms are reused)")
    ab.add_argument("--out", type=here, required=True)
    ab.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a student setting, e.g. beta=6, temperature=1, sup_init=pretrained, student_epochs=12, "
                         "student_layers=3")
    ab.add_argument("--jobs", type=POSITIVE, default=1)
    ab.set_defaults(func=_ablate)

    sw = sub.add_parser("sweep", help="students retrained over a grid of their settings (temperature, alpha, beta, "
                                      "depth, ...): chosen per fold on validation, reported on test (grid.*); over "
                                      "depth alone, also the frontier of noisy UA against CPU latency and size")
    sw.add_argument("--study", type=here, required=True, help="a finished study (data, folds, teachers and "
                                                               "baselines reused)")
    sw.add_argument("--out", type=here, required=True, help="the sweep folder: a folder per point, grid.*, and for "
                                                             "depth frontier.* (docs/frontier.md)")
    sw.add_argument("--set", action="append", default=[], metavar="key=v1,v2,...",
                    help="a key an ablation may change and its values; the grid is the product over every --set "
                         "(depths must divide the teacher's layers; the study's own depth is always added)")
    sw.add_argument("--plan", action="store_true", help="print the points and trainings the grid costs, and exit")
    sw.add_argument("--jobs", type=POSITIVE, default=1, help="steps in parallel within a depth")
    sw.add_argument("--executor", choices=["local", "ray"], default="local",
                    help="where the students train (the frontier is always timed here)")
    sw.add_argument("--int8-ua", choices=["deploy", "all", "off"], default="deploy",
                    help="int8 exports scored under Table 3's conditions (clean, Table 1's noise at 0 and 10 dB), "
                         "every training condition, or not at all (latency and size are always measured)")
    sw.add_argument("--rounds", type=POSITIVE, default=5, help="interleaved timing rounds (the median counts)")
    sw.set_defaults(func=_sweep)

    li = sub.add_parser("listen", help="serve the listening explorer as a web page (Voilà, localhost)")
    li.add_argument("--study", type=here, help="a study folder (default: results/demo in the project)")
    li.add_argument("--port", type=number(int, 1), default=8866)
    li.set_defaults(func=_listen)
