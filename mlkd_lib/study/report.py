"""What 04 calls: a study's report — every step's metrics gathered, the paired statistics, Tables 1–4, the
calibration (Table 5), the diagnostics, the plots and the study's README — each method writing one part of it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..arms import study_arms
from ..config import StudyConfig, load_config, trial_note
from ..data.prepare import no_unseen_noise
from ..layout import StudyLayout, mark_done, read_table
from ..names import CLEAN
from .notebook import open_study


@dataclass
class AnalysisStep:
    """What 04 works with: a study folder and its config; each method writes one part of the report."""
    study: StudyLayout
    cfg: StudyConfig

    @property
    def synthetic(self) -> bool:
        return self.cfg.corpus == "synthetic"

    def collect(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Every step's metrics gathered into ``metrics.csv`` (every condition); returned are the paper's — clean
        and the trained noise types — and their mean ± std over folds (the test-only ones: ``table4``)."""
        from ..analysis.tables import collect_metrics, summarise, trained_conditions
        metrics = trained_conditions(collect_metrics(self.study))
        return metrics, summarise(metrics)

    @property
    def arms(self) -> dict[str, tuple[str, str]]:
        return study_arms(self.cfg)

    def compare(self, metrics: pd.DataFrame) -> pd.DataFrame:
        """The paired comparisons over folds, written to ``stats.csv``: per trained condition and pooled, and
        pooled over the test-only conditions (``analysis/corruption.py``)."""
        from ..analysis.corruption import unseen_differences
        from ..analysis.stats import paired_differences
        differences = pd.concat([paired_differences(metrics, self.arms, seed=self.cfg.seed),
                                 unseen_differences(read_table(self.study.metrics), self.arms, self.cfg.seed)],
                                ignore_index=True)
        differences.to_csv(self.study.stats, index=False)
        return differences

    def table4(self) -> tuple[Path | None, Path | None]:
        """Table 4 (UA per family × severity × model, CE and mCE) and UA against severity, from every condition of
        ``metrics.csv``; (None, None) when the study has no test-only condition."""
        from ..analysis import corruption, plots
        metrics = read_table(self.study.metrics)
        if set(metrics.get("condition", pd.Series(dtype=str))) <= {CLEAN, "noise"}:
            return None, None
        md = corruption.write_table4(self.study.dir, metrics, self.synthetic)
        png = plots.save(corruption.ua_against_severity(metrics, self.synthetic), self.study.plots / "robustness.png")
        return md, png

    def calibration(self) -> tuple[Path, list[Path]]:
        """Does a model know when it is wrong? ``calibration.csv`` (ECE, NLL, Brier, AURC, UA at 80 % coverage per
        model × condition × fold, raw and temperature-scaled), its contrasts added to ``stats.csv`` (kinds ``ECE
        (scaled)``, ``AURC (scaled)``; the UA rows left as they are), Table 5, the reliability diagrams and the
        risk–coverage curves (``analysis/calibration.py``)."""
        from ..analysis import calibration as c
        from ..analysis import plots
        from ..analysis.tables import collect_predictions
        predictions, temperatures = collect_predictions(self.study), c.study_temperatures(self.study)
        cal = c.calibration_table(predictions, temperatures, self.cfg.emotions)
        cal.to_csv(self.study.calibration, index=False)
        differences = c.calibration_differences(cal, self.arms, self.cfg.seed)
        try:
            ua = read_table(self.study.stats)
            ua = ua[~ua.kind.isin(c.CALIBRATION_KINDS)]  # this step's rows from an earlier run
        except (FileNotFoundError, pd.errors.EmptyDataError):  # no UA comparison (one model)
            ua = pd.DataFrame()
        pd.concat([ua, differences], ignore_index=True).to_csv(self.study.stats, index=False)
        md = c.write_table5(self.study.dir, cal, read_table(self.study.metrics), differences, temperatures,
                            self.synthetic)
        figures = {"reliability": c.reliability_diagrams(predictions, temperatures, self.cfg.emotions, self.synthetic),
                   "risk_coverage": c.risk_coverage_plot(predictions, temperatures, self.cfg.emotions, self.synthetic)}
        return md, [plots.save(fig, self.study.plots / f"{name}.png") for name, fig in figures.items()]

    def diagnostics(self) -> dict[str, pd.DataFrame]:
        """What the answer rests on: the layer distances (``representation.csv``), the selected against the
        last epoch (``selection.csv``), how much validation UA moves between epochs, and L_ML's convergence."""
        from ..analysis import diagnostics as d
        curves = d.training_curves(self.study)
        return {"representation": d.collect_representation(self.study),
                "selection": d.selection_diagnostic(self.study),
                "validation_movement": d.validation_movement(curves) if len(curves) else pd.DataFrame(),
                "multilevel_convergence": d.multilevel_convergence(curves) if len(curves) else pd.DataFrame()}

    def tables(self, summary: pd.DataFrame, differences: pd.DataFrame) -> list[Path]:
        """Tables 1 and 2 (cells marked where the paired test says so) and the enhancement table."""
        from ..analysis import stats, tables
        return [tables.write_table1(self.study.dir, summary, self.cfg,
                                    stats.significant_cells(differences, stats.paper_contrast(self.arms))),
                tables.write_table2(self.study.dir, summary, self.cfg,
                                    stats.significant_cells(differences, stats.MLKD_VS_BASELINE)),
                tables.write_enhancement_table(self.study.dir, self.synthetic)]

    def table3(self) -> Path:
        """Size and CPU inference time of teacher vs student; with ``deploy``, the MLKD student of every
        fold exported (ONNX fp32, int8) and scored beside PyTorch."""
        from ..analysis.tables import write_table3
        from ..deploy.bench import study_inference
        from ..deploy.table3 import score_study, summarise_deployed
        deployed = summarise_deployed(score_study(self.study, self.cfg, threads=self.cfg.threads or 1)) \
            if self.cfg.deploy else None
        return write_table3(self.study.dir, study_inference(self.study, self.cfg), self.synthetic, deployed)

    def plots(self, summary: pd.DataFrame, differences: pd.DataFrame, representation: pd.DataFrame) -> list[Path]:
        """UA against SNR, the paired differences, MLKD − baseline, the confusion matrices and the layer
        distances, saved."""
        from ..analysis import plots
        from ..analysis.corruption import UNSEEN_KIND
        from ..analysis.tables import collect_predictions, trained_conditions
        figures = {"ua_vs_snr": plots.ua_vs_snr(summary, self.synthetic),
                   "paired_differences": plots.paired_differences(differences[differences.kind != UNSEEN_KIND],
                                                                    self.synthetic),
                   "mlkd_minus_baseline": plots.mlkd_minus_baseline(summary, self.synthetic),
                   "confusion": plots.confusion_grid(trained_conditions(collect_predictions(self.study)),
                                                     self.cfg.emotions, self.synthetic)}
        if len(representation):
            figures["representation"] = plots.representation(trained_conditions(representation), self.synthetic)
        return [plots.save(fig, self.study.plots / f"{name}.png") for name, fig in figures.items()]

    def finish(self, tables: list[Path], plots: list[Path]) -> Path:
        """The study's ``README.md`` (tables, plots, notebooks), and the step marked done."""
        from ..analysis.tables import write_study_readme
        notes = [n for n in (no_unseen_noise(self.cfg), self.cfg.fold_utterances and trial_note(self.cfg)) if n]
        readme = write_study_readme(self.study.dir, [t for t in tables if t], [p for p in plots if p], self.synthetic,
                                    notes)
        for fold in self.study.folds():  # what two steps finishing a fold at once both left
            self.study.fold(fold).drop_shared()
        mark_done(self.study.analysis_step, readme=str(readme))
        return readme


def open_analysis(study_dir: str = "") -> AnalysisStep:
    """04's setup: the study (``open_study``) and its config."""
    study = StudyLayout(open_study(study_dir))
    return AnalysisStep(study, load_config(study.config))
