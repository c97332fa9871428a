"""What `mlkd study --trial` costs with a base-size checkpoint on this machine: docs/your-data.md's RAVDESS setup
(RAVDESS-shaped: 24 actors, 60 speech files each at 48 kHz, some stereo; DEMAND-shaped noise; an EmoDB-shaped test
corpus) with a wav2vec2-base-shaped model folder (95 M parameters, random weights: the real shapes and arithmetic),
from a folder of its own. A measurement, not a test (pytest does not collect it).

    .venv/bin/python tests/bench/trial_cpu.py OUT      # OUT/summary.json: the trial's wall time and its steps'
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from helpers import corpora  # noqa: E402

SETUP = """preset: paper
corpus: manifest
manifest: ravdess.csv
emotions: [neu, hap, ang, sad]
protocol: kfold
noise_dir: demand.csv
noise_types: [DKITCHEN, PCAFETER, STRAFFIC]
test_manifests: [emodb.csv]
model: {model}
"""


def main(out: Path) -> dict:
    from transformers import Wav2Vec2Config, Wav2Vec2Model
    work, bin_dir = out / "work", Path(sys.executable).parent
    work.mkdir(parents=True, exist_ok=True)
    corpora.ravdess(out / "corpora" / "RAVDESS", actors=range(1, 25), counts={1: 4, **{k: 8 for k in range(2, 9)}})
    corpora.emodb(out / "corpora" / "emodb", speakers=("03", "08", "09", "10", "11", "12", "13", "14", "15", "16"))
    demand = corpora.demand(out / "corpora", seconds=60.0, channels=2)
    Wav2Vec2Model(Wav2Vec2Config()).save_pretrained(out / "models" / "wav2vec2-base")
    subprocess.run([bin_dir / "mlkd", "data", "ravdess", "--root", out / "corpora" / "RAVDESS", "--out", "ravdess.csv"],
                   cwd=work, check=True)
    subprocess.run([bin_dir / "mlkd", "data", "emodb", "--root", out / "corpora" / "emodb", "--out", "emodb.csv"],
                   cwd=work, check=True)
    (work / "demand.csv").write_text("path,type\n" + "".join(f"{env / 'ch01.wav'},{env.name}\n"
                                                              for env in sorted(demand.iterdir())))
    (work / "ravdess.yaml").write_text(SETUP.format(model=out / "models" / "wav2vec2-base"))
    t0 = time.time()
    subprocess.run([bin_dir / "mlkd", "study", "--config", "ravdess.yaml", "--trial"], cwd=work, check=True)
    run = json.loads((work / "results" / "ravdess-trial" / "run.json").read_text())
    summary = {"command_wall_s": round(time.time() - t0, 1), "study_wall_s": run["wall_s"],
               "steps_wall_s": {k: v["wall_s"] for k, v in run["steps"].items()}, "versions": run["versions"]}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]).resolve()), indent=2))
